"""The folder rules every page and command shares: a typed path stays inside its roots, and how
labelled folders (``real/`` and ``fake/`` sub-folders) are found under a root.

Paths are resolved with symlinks followed before the check, so a link cannot lead out of a root;
clips or crops *inside* an accepted folder may still be links to elsewhere (that is how whoever
administers the data root makes a subset of a big collection without copying it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

LABEL_FOLDERS = ("real", "fake")


def resolve_within(raw: str | Path, roots: Sequence[Path], base: Path | None = None) -> Path | None:
    """``raw`` (absolute, or relative to ``base``, default the first root) resolved with symlinks
    followed, or None when it lies in none of ``roots``. Whether it exists is the caller's check."""
    text = str(raw).strip()
    base = Path(base if base is not None else roots[0])
    candidate = (base / Path(text).expanduser()).resolve()
    if any(candidate.is_relative_to(Path(root).resolve()) for root in roots):
        return candidate
    return None


def has_label_folders(folder: Path) -> bool:
    """Whether ``folder`` has a ``real/`` or ``fake/`` sub-folder."""
    return any((Path(folder) / name).is_dir() for name in LABEL_FOLDERS)


def find_folders(root: Path, wanted: Callable[[Path], bool], max_depth: int) -> list[Path]:
    """Folders under ``root`` (itself included, ``max_depth`` levels deep) for which ``wanted`` holds.

    A wanted folder is not descended into (its ``real/`` and ``fake/`` are labels, not folders of
    their own); hidden folders are skipped. Sorted; [] when ``root`` is not a folder.
    """
    root = Path(root)
    found, level = [], [root] if root.is_dir() else []
    for _ in range(max_depth + 1):
        deeper = []
        for folder in level:
            if wanted(folder):
                found.append(folder)
                continue
            try:
                children = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
            except OSError:
                continue  # unreadable: nothing to offer from there
            deeper += [p for p in children if p.name not in LABEL_FOLDERS]
        level = deeper
    return sorted(found)
