"""One source (clip or image) → its face crops on disk, and the summary of a dataset folder.

Kept apart from :mod:`core.data.datasets` because it imports the video and face-finding stack
(OpenCV, MTCNN → TensorFlow), which scanning, splitting and reading a manifest do not need.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import cv2

from core.data.datasets import (
    DONE_STATES,
    MANIFEST_FIELDS,
    SOURCE_FIELDS,
    DatasetError,
    Source,
    check_options,
    prune_unfinished,
    read_csv_rows,
    save_crop,
    scan_sources,
    split_of_sources,
    write_rows,
)
from core.engine import faces, video
from core.errors import DFIError
from core.settings import Settings, get_settings
from core.types import Box, Face, FaceCrop, Frame

# An image with no face found is used whole when it is at most this far from square: face-crop
# datasets are square-ish; a landscape photo with no face found is not a face crop.
MAX_CROP_ASPECT = 1.25
LABEL_NAMES = {0: "real", 1: "fake"}


def _slug(source: str) -> str:
    stem = source.rsplit(".", 1)[0].split("/", 1)[-1]  # drop the real/ or fake/ prefix
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem.replace("/", "__"))


def _image_frame(path: Path) -> Frame:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DFIError(f"{path.name} is not an image OpenCV can read")
    return Frame(0, 0.0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _crops_of(source: Source, frames: int, settings: Settings) -> tuple[int, list[FaceCrop], bool]:
    """(frames sampled, crops found, whether the whole image was used as the crop)."""
    if source.kind == "clip":
        _, sampled = video.read_clip(source.path, frames, settings)
    else:
        sampled = [_image_frame(source.path)]
    found = faces.find_faces(sampled, settings)
    if found.crops or source.kind == "clip":
        return len(sampled), list(found.crops), False
    image = sampled[0].image
    h, w = image.shape[:2]
    if max(h, w) / min(h, w) > MAX_CROP_ASPECT:
        return 1, [], False
    whole = Face(0, 0.0, Box(0.0, 0.0, float(w), float(h)), 0.0, 0)
    return 1, [FaceCrop(whole, image)], True


def process_source(
    source: Source, split: str, out: Path, frames: int, tracks: str, max_side: int, settings: Settings
) -> tuple[dict, list[dict]]:
    """Find and save the face crops of one source.

    Returns:
        ``(record, manifest_rows)``: ``record`` is the source's row for sources.csv (status ok,
        no_face or error with a one-line message); a failure never raises.
    """
    record = {
        "source": source.source,
        "kind": source.kind,
        "label": source.label,
        "split": split,
        "group": source.group,
        "status": "error",
        "frames": 0,
        "frames_with_face": 0,
        "crops": 0,
        "message": "",
    }
    try:
        n_frames, crops, whole = _crops_of(source, frames, settings)
    except DFIError as exc:
        record["message"] = exc.message
        return record, []
    except Exception as exc:  # noqa: BLE001 — one bad file must not stop a long extraction
        record["message"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        return record, []
    if tracks == "main":
        crops = [c for c in crops if c.face.track_id == 0]  # track 0 = seen in most frames
    record["frames"] = n_frames
    # A whole image taken as the crop is not a face found: keep the faces-found share honest.
    record["frames_with_face"] = 0 if whole else len({c.face.frame_index for c in crops})
    folder = Path(split) / LABEL_NAMES[source.label] / _slug(source.source)
    rows = []
    try:
        for crop in crops:
            rel = folder / f"f{crop.face.frame_index:06d}_t{crop.face.track_id}.png"
            save_crop(crop.image, out / rel, max_side)
            rows.append(
                {
                    "path": rel.as_posix(),
                    "source": source.source,
                    "kind": source.kind,
                    "label": source.label,
                    "split": split,
                    "group": source.group,
                    "frame_index": crop.face.frame_index,
                    "time_s": round(crop.face.time_s, 4),
                    "track_id": crop.face.track_id,
                    # empty = no detection: the whole image was taken as the crop
                    "confidence": "" if whole else round(crop.face.confidence, 4),
                }
            )
    except OSError as exc:
        record["message"] = f"cannot save crops: {exc}"
        return record, []
    record["crops"] = len(rows)
    record["status"] = "ok" if rows else "no_face"
    if whole:
        record["message"] = "no face found; the whole image is used as the crop"
    elif not rows:
        record["message"] = "no face found in any sampled frame"
    return record, rows


def summarize(out: Path) -> dict:
    """Counts of a dataset folder: sources and crops per split and label, faces-found share, failures.

    Returns:
        ``{"sources": {split: {label: n}}, "crops": {split: {label: n}}, "frames_with_face_pct",
        "no_face": [source…], "failed": [{"source", "message"}…]}``; labels are "real"/"fake".
    """
    latest = {r["source"]: r for r in read_csv_rows(out / "sources.csv")}  # a retry overrides
    sources: dict = defaultdict(Counter)
    crops: dict = defaultdict(Counter)
    frames = with_face = 0
    for r in latest.values():
        if r["status"] in DONE_STATES:
            name = LABEL_NAMES[int(r["label"])]
            sources[r["split"]][name] += 1
            crops[r["split"]][name] += int(r["crops"])
            frames += int(r["frames"])
            with_face += int(r["frames_with_face"])
    return {
        "sources": {s: dict(c) for s, c in sorted(sources.items())},
        "crops": {s: dict(c) for s, c in sorted(crops.items())},
        "frames_with_face_pct": round(100.0 * with_face / frames, 1) if frames else None,
        "no_face": sorted(r["source"] for r in latest.values() if r["status"] == "no_face"),
        "failed": [{"source": r["source"], "message": r["message"]} for r in latest.values() if r["status"] == "error"],
    }


def extract_faces(
    src: Path,
    out: Path,
    frames: int = 32,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    folds: int | None = None,
    tracks: str = "main",
    max_side: int = 320,
    settings: Settings | None = None,
    show_progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Extract face crops from ``src/real`` and ``src/fake`` into the dataset folder ``out``.

    Args:
        src: the labelled folder.
        out: the dataset folder (created; an existing one made with the same options is resumed).
        frames: frames sampled per clip, evenly, as the analyzer does.
        seed: split seed.
        fractions: (train, val, test) shares of clips, used when ``folds`` is None.
        folds: make this many cross-validation folds (splits ``fold0`` …) instead.
        tracks: "main" keeps the person seen in most frames (track 0): in a fake clip the other
            people are usually untouched, and labelling them fake would teach the model noise;
            "all" keeps every person.
        max_side: crops larger than this are downscaled before saving (keeps the dataset small;
            Xception's 299 px input fits).
        settings: face-finding settings (margin, confidence); defaults to get_settings().
        show_progress: draw a tqdm progress bar on stderr.
        log: where the per-source failure lines go.

    Returns:
        The summary of :func:`core.data.extract.summarize` for the whole folder.

    Raises:
        DatasetError: bad folders or options (individual clips that fail do not raise).
    """
    if tracks not in ("main", "all"):
        raise DatasetError(f"tracks must be 'main' or 'all', not {tracks!r}")
    settings = settings or get_settings()
    src, out = Path(src), Path(out)
    sources = scan_sources(src)
    options = {
        "frames": frames,
        "seed": seed,
        "fractions": list(fractions),
        "folds": folds,
        "tracks": tracks,
        "max_side": max_side,
        "margin": settings.crop_margin,
    }
    splits = split_of_sources(sources, seed, fractions, folds)
    check_options(out, options)
    done = prune_unfinished(out)
    todo = [s for s in sources if s.source not in done]
    from tqdm import tqdm

    for source in tqdm(todo, desc="extract-faces", unit="file", disable=not show_progress):
        record, crops = process_source(source, splits[source.source], out, frames, tracks, max_side, settings)
        if record["status"] == "error":
            log(f"skipped {source.source}: {record['message']}")
        write_rows(out / "manifest.csv", MANIFEST_FIELDS, crops)
        write_rows(out / "sources.csv", SOURCE_FIELDS, [record])  # last: marks the source done
    return summarize(out)
