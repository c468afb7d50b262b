"""What a scan reads: a folder (recursive), a text file listing clips, or a .zip / .tar archive.

Every source becomes a list of :class:`ClipItem` (a path to read and the name shown in the results
table). An archive is unpacked into a private temporary folder first, member by member, with the
checks a file from someone else needs: no member may land outside that folder (absolute paths,
``..``, links), no member may be larger than the upload limit, and the whole may not outgrow the
free disk space. Only members with a video extension are unpacked; everything else in a folder or
an archive that is not a video (a README, a CSV) is not a clip and is passed over, while a damaged
file with a video extension is kept: it becomes an error row, never a stop.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from core.errors import DFIError
from core.settings import VIDEO_EXTENSIONS, Settings

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")
# Free space left untouched on the disk an archive is unpacked to, so a scan never fills it up.
DISK_RESERVE_BYTES = 1 << 30
_COPY_CHUNK = 1 << 20


class SourceError(DFIError):
    """SRC is not something a scan can read (missing, empty, a bad list or a hostile archive)."""


@dataclass(frozen=True)
class ClipItem:
    """One clip to scan: ``path`` is read, ``name`` (relative to SRC) is what the table shows."""

    path: Path
    name: str


def is_archive(path: Path) -> bool:
    """True when ``path``'s name ends like an archive a scan unpacks."""
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


def is_video_name(name: str) -> bool:
    """True for a file name with one of the video extensions the analyzer reads."""
    return PurePosixPath(name).suffix.lower() in VIDEO_EXTENSIONS


def expand(src: Path, unpack_dir: Path, settings: Settings) -> list[ClipItem]:
    """The clips of ``src``: a folder's sorted by name, a list's and an archive's in their own order.

    Args:
        src: a folder, a text file with one clip path per line (``#`` starts a comment; relative
            paths are relative to the list's folder), or an archive (:data:`ARCHIVE_SUFFIXES`).
        unpack_dir: an empty private folder an archive is unpacked into (the caller removes it).
        settings: the upload limit bounds each archive member.

    Raises:
        SourceError: ``src`` does not exist, holds no clip, or is an archive that breaks the rules.
    """
    src = Path(src)
    if not src.exists():
        raise SourceError(f"{src} does not exist")
    if src.is_dir():
        items = list(_folder(src))
    elif is_archive(src):
        items = _unpack(src, Path(unpack_dir), settings)
    else:
        items = _listed(src)
    if not items:
        raise SourceError(f"{src} holds no video clips ({', '.join(VIDEO_EXTENSIONS)})")
    return items


def _folder(root: Path) -> Iterator[ClipItem]:
    for current, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # hidden folders are not clips
        for name in sorted(files):
            if name.startswith(".") or not is_video_name(name):
                continue
            path = Path(current) / name
            yield ClipItem(path, path.relative_to(root).as_posix())


def _listed(list_file: Path) -> list[ClipItem]:
    try:
        text = list_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{list_file} is not a readable text list of clips ({exc.__class__.__name__})") from None
    items = []
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry:
            path = Path(entry).expanduser()
            # A listed path that is missing or damaged is the row's error, not the list's.
            items.append(ClipItem(path if path.is_absolute() else list_file.parent / path, entry))
    return items


def _member_target(unpack_dir: Path, name: str) -> Path:
    """Where an archive member goes, or SourceError when its name would escape ``unpack_dir``."""
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise SourceError(f"the archive member {name!r} points outside the archive; the archive is refused")
    target = (unpack_dir / Path(*pure.parts)).resolve()
    if not target.is_relative_to(unpack_dir.resolve()):
        raise SourceError(f"the archive member {name!r} points outside the archive; the archive is refused")
    return target


def _unpack(archive: Path, unpack_dir: Path, settings: Settings) -> list[ClipItem]:
    unpack_dir.mkdir(parents=True, exist_ok=True)
    with _members(archive) as members:
        total = sum(size for _, size, _ in members)
        free = shutil.disk_usage(unpack_dir).free - DISK_RESERVE_BYTES
        if total > free:
            raise SourceError(
                f"{archive.name} unpacks to {total / 1e9:.1f} GB of clips, more than the free disk space allows"
            )
        return [_unpack_one(archive, unpack_dir, settings, *member) for member in members]


def _unpack_one(archive: Path, unpack_dir: Path, settings: Settings, name: str, size: int, opener) -> ClipItem:
    too_big = SourceError(f"{name} in {archive.name} is larger than the {settings.max_upload_mb} MB limit")
    if size > settings.max_upload_bytes:
        raise too_big
    target = _member_target(unpack_dir, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with opener() as source, open(target, "wb") as out:
        # The header's size is the archive's claim; count what actually comes out as well.
        while chunk := source.read(_COPY_CHUNK):
            written += len(chunk)
            if written > settings.max_upload_bytes:
                raise too_big
            out.write(chunk)
    return ClipItem(target, name)


@contextlib.contextmanager
def _members(archive: Path) -> Iterator[list[tuple[str, int, Callable[[], IO[bytes]]]]]:
    """(name, size, opener) of each regular video member, the archive open meanwhile.

    Raises:
        SourceError: not a readable archive, or it holds a link or a device among its videos.
    """
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                found = []
                for info in zf.infolist():
                    if info.is_dir() or not is_video_name(info.filename):
                        continue
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:  # a symlink stored in a zip
                        raise SourceError(f"{archive.name} holds a link ({info.filename}); the archive is refused")
                    found.append((info.filename, info.file_size, lambda info=info: zf.open(info)))
                yield found
            return
        with tarfile.open(archive) as tf:
            found = []
            for info in tf.getmembers():
                if not is_video_name(info.name) or info.isdir():
                    continue
                if not info.isfile():
                    raise SourceError(f"{archive.name} holds a link or device ({info.name}); the archive is refused")
                found.append((info.name, info.size, lambda info=info: tf.extractfile(info)))
            yield found
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise SourceError(f"{archive.name} is not a readable archive ({exc})") from None


def folder_inside(root: Path, folder: str | Path) -> Path:
    """``folder`` (absolute, or relative to ``root``) with symlinks resolved, if it is a folder inside ``root``.

    The Scan page accepts only these: a typed ``../`` or a link out of the data root is refused.
    Clips inside an accepted folder may still be links to elsewhere (whoever runs the data root put
    them there), as on the Compare page.

    Raises:
        SourceError: empty, outside the root, or not an existing folder.
    """
    text = str(folder).strip()
    if not text:
        raise SourceError("type the name of a folder inside the data folder")
    root_real = Path(root).resolve()
    candidate = (root_real / Path(text).expanduser()).resolve()
    if not candidate.is_relative_to(root_real):
        raise SourceError(f"{text} is outside the data folder ({root_real}); only folders inside it can be scanned")
    if not candidate.is_dir():
        raise SourceError(f"there is no folder {text} inside the data folder ({root_real})")
    return candidate
