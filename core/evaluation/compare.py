"""Which labelled folders the Compare page may evaluate, and a cheap fingerprint of their contents.

A labelled folder holds ``real/`` and/or ``fake/`` sub-folders of video clips (core.evaluation.evaluate's
layout). The page only evaluates folders inside the data root (``Settings.data_root``) or the
project's own samples: a typed path is resolved (symlinks included) and refused when it lands
outside. Clips *inside* an accepted folder may be symlinks to elsewhere: whoever administers the data
root put them there, and that is how a subset of a big collection is made without copying it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from core.data.folders import find_folders, has_label_folders, resolve_within
from core.errors import DFIError
from core.evaluation.evaluate import EvaluationError, find_clips

MAX_DEPTH = 3  # how deep under a root labelled folders are looked for (keeps the listing instant)


class FolderError(DFIError):
    """A folder the Compare page cannot evaluate; the message says why in plain words."""


def labelled_clips(folder: Path) -> list[tuple[Path, int]]:
    """(clip, label) pairs of a labelled folder, or [] when it holds no clips in real/ or fake/."""
    try:
        return find_clips(folder)
    except EvaluationError:
        return []


def labelled_folders(root: Path, max_depth: int = MAX_DEPTH) -> list[Path]:
    """Every folder under ``root`` (``root`` included) with clips in real/ or fake/, sorted.

    Hidden folders and the real/ and fake/ folders themselves are not descended into.
    """
    return find_folders(root, lambda f: has_label_folders(f) and bool(labelled_clips(f)), max_depth)


def resolve_inside(root: Path, folder: str | Path) -> Path:
    """``folder`` (absolute, or relative to ``root``) with symlinks resolved, if it lies inside ``root``.

    Raises:
        FolderError: it is outside the root, does not exist, or holds no labelled clips.
    """
    text = str(folder).strip()
    if not text:
        raise FolderError("type the name of a folder inside the data folder")
    root_real = Path(root).resolve()
    candidate = resolve_within(text, [root_real])
    if candidate is None:
        raise FolderError(f"{text} is outside the data folder ({root_real}); only folders inside it can be used")
    if not candidate.is_dir():
        raise FolderError(f"there is no folder {text} inside the data folder ({root_real})")
    if not labelled_clips(candidate):
        raise FolderError(f"{text} has no video clips in a real/ or fake/ folder")
    return candidate


def folder_fingerprint(clips: list[tuple[Path, int]], folder: Path) -> str:
    """A hash of each clip's relative name, label, resolved target, size and modification time.

    Why not the clips' sha256: hashing hundreds of MB on every rerun of the page takes seconds, while
    ``stat`` takes microseconds per clip. Any copy, edit, rename, re-label or re-pointed symlink
    changes one of these fields; only a same-size rewrite that also restores the old mtime on
    purpose would go unnoticed, which is not something a labelled folder suffers by accident.
    """
    digest = hashlib.sha256()
    for path, label in clips:
        stat = path.stat()  # follows symlinks: the clip that will actually be read
        entry = [Path(path).relative_to(folder).as_posix(), label, str(path.resolve()), stat.st_size, stat.st_mtime_ns]
        digest.update(json.dumps(entry).encode())
    return digest.hexdigest()
