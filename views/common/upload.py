"""The clip a page analyses: uploaded bytes or a file on disk, and its private temp copy.

An upload is spooled to its private temp file once (:func:`spool_upload`), when it arrives; every
later action (analysis, annotated video) reads that file, so no session holds a second copy of the
bytes nor writes a new one per action. The file is removed when the session lets go of it.

No Streamlit here: the caches and session_state keys that hold a ClipSource stay in
``views/common/state.py``, which re-exports these names for the pages.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.engine.video import file_sha256
from core.settings import VIDEO_EXTENSIONS

# The uploader accepts exactly what the engine reads (one list, in core/settings.py).
UPLOAD_TYPES = tuple(ext.lstrip(".") for ext in VIDEO_EXTENSIONS)


@dataclass(frozen=True)
class ClipSource:
    """The clip to analyse: uploaded bytes (``data``) or a file already on disk (``path``)."""

    name: str
    data: bytes | None = None
    path: Path | None = None
    known_sha256: str | None = None  # set when the caller already hashed these bytes

    def sha256(self) -> str:
        """The clip's sha256: the report cache key, so the same clip hits the same report."""
        if self.known_sha256 is not None:
            return self.known_sha256
        if self.data is not None:
            return hashlib.sha256(self.data).hexdigest()
        return file_sha256(self.path)


@contextmanager
def clip_file(source: ClipSource) -> Iterator[Path]:
    """A path to the clip: the file itself, or a private temp copy of uploaded bytes.

    The copy lives in a fresh mkdtemp folder (mode 0700) and is created with mode 0600, so only
    this user can read it; it keeps the upload's own name (made safe) so messages name the file the
    user knows, with an allowed video suffix so the container is recognised. The folder is removed
    when the block ends, whatever happens.
    """
    if source.data is None:
        yield source.path
        return
    folder = Path(tempfile.mkdtemp(prefix="dfi-upload-"))
    path = folder / safe_upload_name(source.name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(source.data)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class SpooledUpload:
    """An upload written once to a private temp file; the file goes when this object does.

    The folder is removed by a finalizer when the object is garbage-collected (its session replaced
    the upload, or the session ended) or at interpreter exit, whichever comes first.
    """

    def __init__(self, name: str, data: bytes):
        self.name = name
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.size = len(data)
        folder = Path(tempfile.mkdtemp(prefix="dfi-upload-"))  # mode 0700
        self._finalizer = weakref.finalize(self, shutil.rmtree, folder, True)
        self.path = folder / safe_upload_name(name)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)

    def source(self) -> ClipSource:
        """The ClipSource of this upload: its file, under the user's own name, hash known."""
        return ClipSource(name=self.name, path=self.path, known_sha256=self.sha256)

    def remove(self) -> None:
        """Delete the file now (also safe to call twice)."""
        self._finalizer()


def safe_upload_name(name: str) -> str:
    """A plain file name for an upload: no folders, no odd characters, an allowed video suffix."""
    stem, suffix = Path(Path(name).name).stem, Path(name).suffix.lower()
    stem = re.sub(r"[^A-Za-z0-9._ -]+", "_", stem).strip(" .")[:100] or "upload"
    if suffix.lstrip(".") not in UPLOAD_TYPES:
        suffix = ".mp4"
    return stem + suffix
