"""Helpers for the Compare tests: a labelled folder of placeholder clips and a fast, fake analyzer.

The fake replaces only ``core.engine.analysis.load_models`` and ``core.engine.analysis.analyze_loaded`` (the two
slow calls a scan worker makes; ``core.scan.evaluate.evaluate`` runs one worker in its own process by default),
so the real evaluation code — clip discovery, the scan with its RESULTS folder, the per-clip rows, the metrics,
the ROC points, the progress callback — runs on scores the test chose. Its reports give the dfi.report/1 fields
that evaluation reads.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from core.errors import InvalidClipError

FRAMES_PER_CLIP = 4


def make_labelled_folder(root: Path, name: str, real: list[str], fake: list[str]) -> Path:
    """``root/name/real/<clip>.mp4`` and ``root/name/fake/<clip>.mp4`` (a few placeholder bytes each).

    Each clip's bytes name it: a scan knows clips by their sha256, and identical files would be one clip.
    """
    folder = root / name
    for label, clips in (("real", real), ("fake", fake)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for clip in clips:
            (folder / label / f"{clip}.mp4").write_bytes(f"not decoded: the analysis of {clip} is faked".encode())
    return folder


def _verdict(p: float) -> str:
    return "FAKE" if p >= 0.65 else "REAL" if p <= 0.35 else "UNCERTAIN"


class FakeAnalysis:
    """Scores per clip stem: ``{model id: p_fake}``, or ``"no_face"``, or ``"error"``.

    ``stop_after`` (optional) calls ``st.stop()`` when that many clips are done, as a click on the
    page's Stop button interrupts the script between clips.
    """

    def __init__(self, scores: dict, unavailable: dict[str, str] | None = None, stop_after: int | None = None):
        self.scores = scores
        self.unavailable = unavailable or {}
        self.stop_after = stop_after
        self.analysed: list[str] = []

    def install(self, monkeypatch) -> FakeAnalysis:
        from core.engine import analysis

        monkeypatch.setattr(analysis, "load_models", self.load_models)
        monkeypatch.setattr(analysis, "analyze_loaded", self.analyze_loaded)
        return self

    def load_models(self, ids, settings=None):
        import models

        return [
            SimpleNamespace(
                card=models.get_card(i, settings),
                detector=None if i in self.unavailable else object(),
                error=self.unavailable.get(i),
            )
            for i in ids
        ]

    def analyze_loaded(self, path, loaded, frames, settings=None, aggregation="mean"):
        if self.stop_after is not None and len(self.analysed) >= self.stop_after:
            import streamlit as st

            st.stop()
        self.analysed.append(Path(path).stem)
        wanted = self.scores[Path(path).stem]
        if wanted == "error":
            raise InvalidClipError(f"{Path(path).name} is not a video file")
        results = []
        for item in loaded:
            p = None if wanted == "no_face" or item.detector is None else wanted[item.card.id]
            results.append(
                {
                    "id": item.card.id,
                    "p_fake": p,
                    "seconds": 0.01,
                    "verdict": "NO_FACE" if wanted == "no_face" else "UNAVAILABLE" if p is None else _verdict(p),
                    "frames": [] if p is None else [{"p_fake": p}] * FRAMES_PER_CLIP,
                    "message": item.error,
                }
            )
        faces = [] if wanted == "no_face" else [{}] * FRAMES_PER_CLIP
        data = {"status": "no_faces" if wanted == "no_face" else "ok", "faces": faces, "models": results}
        return SimpleNamespace(to_dict=lambda: data)


# Two MesoNet cards on 3 real and 3 fake clips, plus one clip without a face and one broken file.
# meso4.df ranks every fake above every real (AUC 1); mesoinception4.df gets 7 of 9 pairs right.
SCORES = {
    "r1": {"meso4.df": 0.10, "mesoinception4.df": 0.20},
    "r2": {"meso4.df": 0.20, "mesoinception4.df": 0.70},
    "r3": {"meso4.df": 0.30, "mesoinception4.df": 0.40},
    "f1": {"meso4.df": 0.60, "mesoinception4.df": 0.30},
    "f2": {"meso4.df": 0.80, "mesoinception4.df": 0.90},
    "f3": {"meso4.df": 0.90, "mesoinception4.df": 0.80},
    "r_noface": "no_face",
    "f_broken": "error",
}
REAL, FAKE = ["r1", "r2", "r3", "r_noface"], ["f1", "f2", "f3", "f_broken"]
