"""Face-crop datasets from a labelled folder (``real/`` and ``fake/``): ``python -m core extract-faces``.

Clips go through exactly the analyzer's path (``core.engine.video.read_clip`` → ``core.engine.faces.find_faces``
→ its square crops), so a model is trained on the crops it will see at inference time. The output
folder holds the crops as PNG under ``<split>/<label>/<source>/`` plus three files:

- ``dataset.json``: the options that made it (a resumed run must use the same ones);
- ``manifest.csv``: one row per crop (:data:`MANIFEST_FIELDS`), read by training;
- ``sources.csv``: one row per clip or image processed (:data:`SOURCE_FIELDS`), with its status, so
  an interrupted run resumes where it stopped and failures are listed, not lost.

Images: face finding runs on the image as one frame. When it finds no face and the image is nearly
square, the whole image is taken as the crop (face-crop datasets such as ``../shared/data/crops``
are already tight MTCNN crops, too small for MTCNN to find again); otherwise it is a no-face source.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import cv2

from core.data.groups import assign_folds, assign_splits, source_group
from core.errors import DFIError
from core.settings import VIDEO_EXTENSIONS

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
LABELS = {"real": 0, "fake": 1}
DATASET_SCHEMA = "dfi.dataset/1"
MANIFEST_FIELDS = (
    "path",
    "source",
    "kind",
    "label",
    "split",
    "group",
    "frame_index",
    "time_s",
    "track_id",
    "confidence",
)
SOURCE_FIELDS = (
    "source",
    "kind",
    "label",
    "split",
    "group",
    "status",
    "frames",
    "frames_with_face",
    "crops",
    "message",
)
DONE_STATES = ("ok", "no_face")  # a source in one of these is not processed again on resume


class DatasetError(DFIError):
    """The source folder or the output folder cannot be used as asked."""


@dataclass(frozen=True)
class Source:
    """One clip or image under ``real/`` or ``fake/``; ``source`` is its path relative to SRC."""

    path: Path
    source: str
    kind: str  # "clip" | "image"
    label: int
    group: str


def scan_sources(src: Path) -> list[Source]:
    """Every clip and image under ``src/real`` and ``src/fake`` (nested folders allowed), sorted.

    An image inside a sub-folder takes the sub-folder as its group (a folder of one video's
    frames); everything else is grouped by its file name (see :func:`source_group`).

    Raises:
        DatasetError: ``src`` has neither ``real/`` nor ``fake/``, or they hold no clip or image.
    """
    roots = [(src / name, label) for name, label in LABELS.items() if (src / name).is_dir()]
    if not roots:
        raise DatasetError(f"{src} needs a real/ and/or fake/ folder holding clips or images")
    found: list[Source] = []
    for root, label in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            suffix = path.suffix.lower()
            kind = "clip" if suffix in VIDEO_EXTENSIONS else "image" if suffix in IMAGE_EXTENSIONS else None
            if kind is None:
                continue
            grouped_by = path.parent.name if kind == "image" and path.parent != root else path.stem
            found.append(Source(path, path.relative_to(src).as_posix(), kind, label, source_group(grouped_by)))
    if not found:
        raise DatasetError(f"no clips ({', '.join(VIDEO_EXTENSIONS)}) or images under {src}/real or {src}/fake")
    return found


def split_of_sources(
    sources: list[Source], seed: int, fractions: tuple[float, float, float], folds: int | None
) -> dict[str, str]:
    """Map each source (relative path) to its split: ``train|val|test``, or ``fold<k>`` with folds."""
    groups = [s.group for s in sources]
    labels = [s.label for s in sources]
    if folds:
        by_group = {g: f"fold{k}" for g, k in assign_folds(groups, labels, folds, seed).items()}
    else:
        by_group = assign_splits(groups, labels, seed, fractions)
    return {s.source: by_group[s.group] for s in sources}


def read_csv_rows(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV written by this module (empty when the file does not exist)."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def collection_of(source: str) -> str:
    """The collection of a source path ``real/<collection>/…/clip.mp4``: its first sub-folder.

    A collection is a whole source of clips (a dataset, a generator family with the recordings
    it was driven by); ``cross-validate --by-source`` holds one out at a time. A file directly
    under ``real/`` or ``fake/`` belongs to no collection (``""``).
    """
    parts = source.split("/")
    return parts[1] if len(parts) >= 3 else ""


def read_manifest(dataset_dir: Path) -> list[dict]:
    """The crops of a dataset folder, typed: label/frame_index/track_id int, time_s float, abs path.

    Each row also gets ``collection`` (see :func:`collection_of`), derived from its source path,
    so datasets made before collections existed read the same way.

    Every crop must lie inside the folder, links followed: a manifest is a file anyone who can
    write into the data root can craft, and a row such as ``../../etc/passwd`` would make training
    read (and the logs name) a file it was never given.

    Raises:
        DatasetError: the folder has no manifest.csv, a row names a file outside the folder, or a
            row is malformed (one line naming the manifest line).
    """
    path = Path(dataset_dir) / "manifest.csv"
    if not path.is_file():
        raise DatasetError(
            f"{dataset_dir} is not a face-crop dataset (no manifest.csv); "
            "make one with `python -m core extract-faces SRC OUT`"
        )
    root = Path(dataset_dir).resolve()
    inside = _InsideCheck(root)
    rows = []
    for line, row in enumerate(read_csv_rows(path), start=2):  # line 1 is the header
        where = f"{path} line {line}"
        inside.check(row.get("path") or "", where)
        typed = {}
        for name, kind in (("label", int), ("frame_index", int), ("track_id", int), ("time_s", float)):
            try:
                typed[name] = kind(row[name])
            except (KeyError, TypeError, ValueError):  # a missing column reads as None
                raise DatasetError(
                    f"{where}: {name} {row.get(name)!r} is not a number; make the dataset again with extract-faces"
                ) from None
        source = row.get("source") or ""
        rows.append({**row, "file": Path(dataset_dir) / row["path"], **typed, "collection": collection_of(source)})
    return rows


class _InsideCheck:
    """Whether manifest paths stay inside ``root`` (resolved), each folder resolved only once:
    crops share a folder per clip, and a big dataset has tens of thousands of rows."""

    def __init__(self, root: Path):
        self.root = root
        self.folders: dict[PurePosixPath, Path] = {}

    def check(self, rel: str, where: str) -> None:
        """Raises DatasetError when ``rel`` is empty, absolute, climbs out, or links out."""
        path = PurePosixPath(rel)
        outside = DatasetError(f"{where} names {rel!r}, outside the dataset folder {self.root}: refused")
        if not rel or path.is_absolute() or ".." in path.parts:
            raise outside
        folder = self.folders.get(path.parent)
        if folder is None:
            folder = self.folders[path.parent] = (self.root / path.parent).resolve()
        file = folder / path.name
        if not folder.is_relative_to(self.root) or (file.is_symlink() and not file.resolve().is_relative_to(self.root)):
            raise outside


def write_rows(path: Path, fields: Iterable[str], rows: Iterable[dict], mode: str = "a") -> None:
    new = mode == "w" or not path.is_file()
    with path.open(mode, newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields))
        if new:
            writer.writeheader()
        writer.writerows(rows)
        handle.flush()


def check_options(out: Path, options: dict) -> None:
    """Write ``dataset.json``, or check a resumed run uses the options the folder was made with.

    Raises:
        DatasetError: ``out`` was made with different options.
    """
    meta = out / "dataset.json"
    if meta.is_file():
        old = json.loads(meta.read_text(encoding="utf-8"))
        changed = [k for k, v in options.items() if old.get(k) != v]
        if changed:
            raise DatasetError(
                f"{out} was made with other options ({', '.join(changed)}); "
                "use a new output folder or the same options to resume"
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps({"schema": DATASET_SCHEMA, **options}, indent=2) + "\n", encoding="utf-8")


def prune_unfinished(out: Path) -> set[str]:
    """Drop manifest rows of sources not marked done (an interrupted clip); return the done ones."""
    done = {r["source"] for r in read_csv_rows(out / "sources.csv") if r["status"] in DONE_STATES}
    rows = read_csv_rows(out / "manifest.csv")
    kept = [r for r in rows if r["source"] in done]
    if len(kept) != len(rows):
        write_rows(out / "manifest.csv", MANIFEST_FIELDS, kept, mode="w")
    return done


def save_crop(image, path: Path, max_side: int) -> None:
    """Save an RGB uint8 crop as PNG, downscaled (area filter) so its side is at most ``max_side``."""
    side = max(image.shape[:2])
    if side > max_side:
        size = (round(image.shape[1] * max_side / side), round(image.shape[0] * max_side / side))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    path.parent.mkdir(parents=True, exist_ok=True)
    # OpenCV writes BGR; the crop is RGB.
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
