"""The data a training job may use: where it may live, and what it holds.

A job reads only folders inside ``Settings.data_root`` (symbolic links followed, so a link cannot
lead out of it) or inside the app's own ``<cache>/datasets`` folder, where face crops extracted from
a folder of clips are written (the data root itself may be read-only). :func:`summarize_folder`
says what the Train page shows before launch: clips and crops per label and split, the share of
sampled frames with a face, and the problems that would make training fail (no faces, one class).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from core.data.datasets import IMAGE_EXTENSIONS, LABELS, DatasetError, read_csv_rows, read_manifest
from core.data.folders import find_folders, has_label_folders, resolve_within
from core.errors import DFIError
from core.settings import VIDEO_EXTENSIONS, Settings

LABEL_NAMES = {v: k for k, v in LABELS.items()}


class DataFolderError(DFIError):
    """A data folder a job may not use (outside the data root, missing)."""


def datasets_dir(settings: Settings) -> Path:
    """Where face crops extracted by the app go (inside the user cache)."""
    return settings.cache_dir / "datasets"


def resolve_data_folder(raw: str | Path, settings: Settings) -> Path:
    """The folder as an absolute, link-free path, checked to lie inside the allowed roots.

    Args:
        raw: absolute, or relative to the data root.

    Raises:
        DataFolderError: outside the data root (and the app's datasets folder), or not a folder.
    """
    text = str(raw).strip()
    if not text:
        raise DataFolderError(f"choose a data folder inside {settings.data_root}")
    resolved = resolve_within(text, [settings.data_root, datasets_dir(settings)])
    if resolved is None:
        raise DataFolderError(
            f"{text} is outside the data folder {settings.data_root}: training may only read data from there"
        )
    if not resolved.is_dir():
        raise DataFolderError(f"there is no folder {text} in {settings.data_root}")
    return resolved


def candidate_folders(settings: Settings, max_depth: int = 3) -> list[Path]:
    """Folders a job could train on: under the data root or the app's datasets folder, those with
    real/ and fake/ sub-folders or a manifest.csv (searched ``max_depth`` levels deep), sorted."""

    def wanted(folder: Path) -> bool:
        return (folder / "manifest.csv").is_file() or has_label_folders(folder)

    return [f for root in (settings.data_root, datasets_dir(settings)) for f in find_folders(root, wanted, max_depth)]


def extraction_target(src: Path, settings: Settings) -> Path:
    """The dataset folder that face crops extracted from ``src`` go to (stable per source path)."""
    digest = hashlib.sha256(str(Path(src).resolve()).encode()).hexdigest()[:8]
    return datasets_dir(settings) / f"{Path(src).name}-{digest}"


@dataclass(frozen=True)
class DatasetSummary:
    """What a data folder holds, for the form.

    Attributes:
        kind: "crops" (a face-crop dataset, ready to train on), "raw" (real/ and fake/ clips or
            images: faces must be extracted first) or "unknown".
        clips: split -> label name -> clips or images (raw folders: split "all").
        crops: split -> label name -> face crops.
        faces_pct: share of sampled frames in which a face was found, or None when unknown.
        problems: reasons training cannot start (plain sentences); notes: things worth knowing.
    """

    folder: Path
    kind: str
    clips: dict[str, dict[str, int]]
    crops: dict[str, dict[str, int]] = field(default_factory=dict)
    faces_pct: float | None = None
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return self.kind == "crops" and not self.problems


def _count(rows, key) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        counts[row["split"]][LABEL_NAMES[int(row["label"])]] += key(row)
    return {split: dict(c) for split, c in sorted(counts.items())}


def _one_class(labels: set[int], where: str) -> str | None:
    if labels == {0}:
        return f"{where} holds only real faces: training needs real and fake ones"
    if labels == {1}:
        return f"{where} holds only fake faces: training needs real and fake ones"
    return None


def _summarize_crops(folder: Path) -> DatasetSummary:
    rows = read_manifest(folder)
    sources = read_csv_rows(folder / "sources.csv")
    done = [s for s in sources if s["status"] in ("ok", "no_face")]
    frames = sum(int(s["frames"] or 0) for s in done)
    faces_pct = round(100.0 * sum(int(s["frames_with_face"] or 0) for s in done) / frames, 1) if frames else None
    problems, notes = [], []
    if not rows:
        problems.append("no faces were found in this folder's clips, so there is nothing to train on")
    else:
        train = {r["label"] for r in rows if r["split"] not in ("val", "test")}
        problem = _one_class({r["label"] for r in rows}, "this folder") or _one_class(train, "the training part")
        problems += [problem] if problem else []
        if not any(r["split"] == "val" for r in rows):
            notes.append("no validation part: the best epoch is chosen by the training loss")
    no_face = [s["source"] for s in sources if s["status"] == "no_face"]
    failed = [s["source"] for s in sources if s["status"] == "error"]
    if no_face:
        notes.append(f"no face found in {len(no_face)} of {len(sources)} clips or images")
    if failed:
        notes.append(f"{len(failed)} clips or images could not be read")
    return DatasetSummary(
        folder, "crops", _count(done, lambda s: 1), _count(rows, lambda r: 1), faces_pct, tuple(problems), tuple(notes)
    )


def _summarize_raw(folder: Path) -> DatasetSummary:
    counts: dict[str, int] = {}
    for name in LABELS:
        sub = folder / name
        files = [p for p in sub.rglob("*") if p.is_file()] if sub.is_dir() else []
        counts[name] = sum(p.suffix.lower() in VIDEO_EXTENSIONS + IMAGE_EXTENSIONS for p in files)
    problems = []
    if not any(counts.values()):
        problems.append("its real/ and fake/ folders hold no clips or images")
    else:
        problem = _one_class({LABELS[n] for n, c in counts.items() if c}, "this folder")
        problems += [problem] if problem else []
    return DatasetSummary(
        folder,
        "raw",
        {"all": counts},
        problems=tuple(problems),
        notes=("faces have not been extracted from these clips yet",),
    )


def summarize_folder(folder: Path) -> DatasetSummary:
    """What ``folder`` holds (see :class:`DatasetSummary`); never raises for a readable folder."""
    folder = Path(folder)
    try:
        if (folder / "manifest.csv").is_file():
            return _summarize_crops(folder)
        if any((folder / name).is_dir() for name in LABELS):
            return _summarize_raw(folder)
    except (DatasetError, OSError, ValueError, KeyError) as exc:
        reason = exc.message if isinstance(exc, DFIError) else f"it could not be read ({exc})"
        return DatasetSummary(folder, "unknown", {}, problems=(reason,))
    return DatasetSummary(
        folder,
        "unknown",
        {},
        problems=("this folder holds neither real/ and fake/ sub-folders nor extracted face crops",),
    )
