"""Helpers for the scan tests: small folders of shared clips, and a fast backend that records its work."""

from __future__ import annotations

import threading
from pathlib import Path

# Short shared clips (c40 FaceForensics++, DFDC): a few seconds of analysis each at 4 frames.
SHARED_CLIPS = (
    "real/ffpp_youtube_c40_183.mp4",
    "real/ffpp_youtube_c40_253.mp4",
    "real/dfdc_lynaeydofd.mp4",
    "real/ffpp_youtube_c40_469.mp4",
    "fake/ffpp_Deepfakes_c40_183_253.mp4",
    "fake/ffpp_Face2Face_c40_253_183.mp4",
    "fake/dfdc_adylbeequz.mp4",
    "fake/ffpp_FaceSwap_c40_469_481.mp4",
)


def link_clips(shared_data: Path, folder: Path, names=SHARED_CLIPS) -> list[Path]:
    """Symlink shared clips into ``folder`` keeping their real/ or fake/ part; returns the links."""
    links = []
    for name in names:
        link = folder / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(shared_data / "clips" / name)
        links.append(link)
    return links


class RecordingBackend:
    """A backend that 'analyses' by reading the file's first bytes: fast, and it records every clip.

    A file starting with ``BAD`` is an error outcome. ``stop_after`` sets the scan's stop event once
    that many clips are done (as a Stop would), so the engine's resume path can be tested.
    """

    name = "recording"

    def __init__(self, seen: list[str], stop_after: int | None = None):
        self.seen, self.stop_after, self.workers = seen, stop_after, 1

    def __call__(self, job, settings, clips):
        self.model_ids = job.model_ids
        return self

    def outcomes(self, items, stop: threading.Event):
        for index, item in enumerate(items):
            if stop.is_set():
                return
            data = Path(item.path).read_bytes()
            self.seen.append(item.name)
            if data.startswith(b"BAD"):
                yield index, {"status": "error", "report": None, "error": f"{item.name} is damaged", "seconds": 0.01}
            else:
                p = (data[-1] % 100) / 100
                models = [{"id": m, "p_fake": p, "verdict": "FAKE" if p > 0.5 else "REAL"} for m in self.model_ids]
                yield index, {"status": "ok", "report": {"models": models}, "error": None, "seconds": 0.01}
            if self.stop_after is not None and len(self.seen) >= self.stop_after:
                stop.set()
