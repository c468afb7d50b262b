"""Exports of a ClipReport: the dfi.report/1 JSON, a per-frame CSV and an annotated video."""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from core.engine import video
from core.engine.analysis import verdict_for
from core.errors import DFIError, InvalidClipError
from core.settings import Settings, get_settings
from core.types import ClipReport, Face, Verdict

log = logging.getLogger(__name__)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "report.schema.json"
CSV_COLUMNS = ("clip", "model_id", "frame_index", "time_s", "track_id", "p_fake", "verdict")

# Box colours (BGR, since frames are drawn in OpenCV's channel order) by per-frame verdict.
_COLOURS = {
    Verdict.FAKE: (40, 40, 230),
    Verdict.UNCERTAIN: (0, 170, 255),
    Verdict.REAL: (60, 190, 60),
}
_FFMPEG_TIMEOUT_S = 300


def report_to_json(report: ClipReport | list[ClipReport], indent: int | None = 2) -> str:
    """The report as dfi.report/1 JSON text (see ``core/schemas/report.schema.json``).

    Args:
        report: one report (gives the object), or a list of them (gives an array of objects).
        indent: spaces per level; None for one compact line.

    Raises:
        ValueError: the report holds NaN or infinity (never written: a score must be real).
        TypeError: the report holds a non-JSON value such as a numpy scalar (a bug upstream).
    """
    data = [r.to_dict() for r in report] if isinstance(report, list) else report.to_dict()
    return json.dumps(data, indent=indent, allow_nan=False, ensure_ascii=False)


def load_schema() -> dict:
    """The dfi.report/1 JSON Schema (draft 2020-12) as a dict."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def csv_rows(report: ClipReport) -> list[dict]:
    """One row per scored frame and model.

    ``verdict`` is that frame's own verdict under the model's band; a model with no frame scores
    (NO_FACE, UNAVAILABLE) still gets one row with empty frame fields, so no model silently vanishes.
    """
    rows = []
    for model in report.models:
        if not model.frames:
            rows.append(
                dict.fromkeys(CSV_COLUMNS, "")
                | {
                    "clip": report.clip.name,
                    "model_id": model.id,
                    "verdict": model.verdict.value,
                }
            )
        for f in model.frames:
            rows.append(
                {
                    "clip": report.clip.name,
                    "model_id": model.id,
                    "frame_index": f.frame_index,
                    "time_s": round(f.time_s, 4),
                    "track_id": f.track_id,
                    "p_fake": round(f.p_fake, 6),
                    "verdict": verdict_for(f.p_fake, model.band).value,
                }
            )
    return rows


def write_csv(report: ClipReport | list[ClipReport], path_or_file: str | Path | IO[str]) -> None:
    """Write the per-frame CSV (columns: clip, model_id, frame_index, time_s, track_id, p_fake, verdict).

    Args:
        report: one report, or several (their rows follow each other under one header).
        path_or_file: a path, or an open text file (e.g. ``io.StringIO``).
    """
    reports = report if isinstance(report, list) else [report]
    if isinstance(path_or_file, (str, Path)):
        with open(path_or_file, "w", newline="", encoding="utf-8") as fh:
            _write_rows(reports, fh)
    else:
        _write_rows(reports, path_or_file)


def _write_rows(reports: list[ClipReport], fh: IO[str]) -> None:
    writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in reports:
        writer.writerows(csv_rows(r))


def csv_text(report: ClipReport) -> str:
    """The CSV as a string (for download buttons)."""
    buf = io.StringIO()
    write_csv(report, buf)
    return buf.getvalue()


def write_annotated_video(
    report: ClipReport, clip_path: str | Path, out_path: str | Path, settings: Settings | None = None
) -> Path:
    """Write the sampled frames with every face box labelled with each model's p_fake.

    The video holds only the sampled frames (decoding every frame between them would cost seconds
    on a 1080p clip), at the clip's size and paced to last as long as the clip (at least one frame
    per second). It is written with OpenCV (mp4v) and, when ffmpeg is on PATH, re-encoded to H.264
    (yuv420p, +faststart) so browsers can play it; the mp4v temp file is always removed.

    Args:
        report: the clip's report (from :func:`core.engine.analysis.analyze`).
        clip_path: the same clip file the report was made from.
        out_path: where to write the .mp4.
        settings: limits used to re-read the clip.

    Returns:
        ``out_path`` as a Path.

    Raises:
        InvalidClipError: the clip cannot be read again.
        DFIError: the video cannot be written.
    """
    settings = settings or get_settings()
    out_path = Path(out_path)
    info = video.probe(clip_path, settings)
    if info.sha256 != report.clip.sha256:
        raise DFIError(f"{Path(clip_path).name} is not the clip this report was made from")
    # One frame at a time: a 4K clip's 128 sampled frames would be 3 GB held together.
    frames = video.iter_sampled(clip_path, report.sampling.requested, info, settings)
    first = next(frames, None)
    if first is None:
        raise InvalidClipError(f"{info.name}: no frames could be decoded again")
    faces_by_frame: dict[int, list[Face]] = {}
    for face in report.faces:
        faces_by_frame.setdefault(face.frame_index, []).append(face)
    scores = {(f.frame_index, f.track_id, m.id): f.p_fake for m in report.models for f in m.frames}

    height, width = first.image.shape[:2]
    sampled = max(1, len(report.sampling.frame_indices))
    fps = min(30.0, max(1.0, sampled / max(info.duration_s, 1e-3)))
    fd, tmp_name = tempfile.mkstemp(suffix=".mp4", prefix="dfi-annotated-")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
        if not writer.isOpened():
            raise DFIError(f"cannot write an mp4 video of {width}x{height}")
        try:
            for frame in itertools.chain([first], frames):
                bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
                _draw_frame(bgr, frame.time_s, faces_by_frame.get(frame.index, []), report, scores)
                writer.write(bgr)
        finally:
            writer.release()
            frames.close()
        _finish(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def _draw_frame(bgr: np.ndarray, time_s: float, faces: list[Face], report: ClipReport, scores: dict) -> None:
    """Draw the time stamp, and each face's box coloured by its most suspicious model, in place."""
    scale = max(0.5, min(bgr.shape[:2]) / 720)
    thick = max(1, round(2 * scale))
    _label(bgr, [f"{time_s:6.2f} s"], (int(8 * scale), int(8 * scale)), scale, (40, 40, 40))
    for face in faces:
        lines, worst = [], None
        for model in report.models:
            p = scores.get((face.frame_index, face.track_id, model.id))
            if p is None:
                continue
            verdict = verdict_for(p, model.band)
            lines.append(f"{model.display_name}: {100 * p:.0f}% fake")
            if worst is None or list(_COLOURS).index(verdict) < list(_COLOURS).index(worst):
                worst = verdict
        colour = _COLOURS.get(worst, (200, 200, 200))
        x, y, w, h = (int(round(v)) for v in (face.box.x, face.box.y, face.box.w, face.box.h))
        cv2.rectangle(bgr, (x, y), (x + w, y + h), colour, thick)
        lines.insert(0, f"person {face.track_id}")
        _label(bgr, lines, (x, y + h + thick), scale, colour)


def _label(bgr: np.ndarray, lines: list[str], origin: tuple[int, int], scale: float, colour) -> None:
    """White text on a filled box of ``colour``, kept inside the frame."""
    font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale
    thickness = max(1, round(scale))
    dims = [cv2.getTextSize(t, font, size, thickness)[0] for t in lines]
    line_h = max(d[1] for d in dims) + int(8 * scale)
    box_w, box_h = max(d[0] for d in dims) + int(8 * scale), line_h * len(lines) + int(4 * scale)
    x = min(max(0, origin[0]), max(0, bgr.shape[1] - box_w))
    y = min(max(0, origin[1]), max(0, bgr.shape[0] - box_h))
    cv2.rectangle(bgr, (x, y), (x + box_w, y + box_h), colour, cv2.FILLED)
    for i, text in enumerate(lines):
        baseline = y + (i + 1) * line_h - int(2 * scale)
        cv2.putText(bgr, text, (x + int(4 * scale), baseline), font, size, (255, 255, 255), thickness, cv2.LINE_AA)


def _finish(tmp: Path, out_path: Path) -> None:
    """Re-encode to browser-playable H.264 with ffmpeg when it exists; otherwise keep mp4v."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        log.info("ffmpeg not found: the annotated video stays MPEG-4 part 2 (mp4v)")
        shutil.copyfile(tmp, out_path)
        return
    cmd = [
        ffmpeg,
        "-nostdin",
        "-y",
        "-loglevel",
        "error",
        "-i",
        str(tmp),
        # H.264 needs even sides; yuv420p and faststart make it play in every browser.
        "-vf",
        "scale=trunc(iw/2)*2:trunc(ih/2)*2",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        str(out_path),
    ]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_FFMPEG_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        done = None
        log.warning("ffmpeg could not re-encode the annotated video (%s); keeping mp4v", exc)
    if done is not None and done.returncode == 0:
        return
    if done is not None:
        log.warning("ffmpeg failed (%s); keeping mp4v", (done.stderr.strip().splitlines() or ["?"])[-1])
    shutil.copyfile(tmp, out_path)
