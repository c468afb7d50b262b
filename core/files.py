"""Small file primitives every layer shares: atomic writes, locked JSON updates, ISO times.

Several processes touch the same files (the trainer, the job watcher, every browser session's
refresh, the scanner), so a write goes to a private temporary file in the target's folder and is
renamed into place (readers see the old file or the new one, never half of one), and a
read-modify-write of a JSON object holds an exclusive lock on a ``.<name>.lock`` file beside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path


def now_iso() -> str:
    """The current UTC time as an ISO string with seconds (the trainer's format)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def parse_iso(text: str | None) -> datetime | None:
    """An ISO time string as an aware datetime, or None when missing or malformed."""
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def read_json(path: Path) -> dict:
    """A JSON object from ``path``; {} when the file is missing, half-written or not an object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_bytes_atomic(path: Path, data: bytes, mode: int = 0o644) -> Path:
    """Write ``data`` as ``path`` via a uniquely named temp file and a rename; returns ``path``.

    The temp name comes from ``mkstemp`` (unique per call, not per process), so two threads or
    processes writing the same file never write into each other's temp file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return path


def write_text_atomic(path: Path, text: str, mode: int = 0o644) -> Path:
    """:func:`write_bytes_atomic` for UTF-8 text."""
    return write_bytes_atomic(path, text.encode("utf-8"), mode)


def write_json_atomic(path: Path, data: dict) -> None:
    """Write JSON through a temporary file and a rename, so a reader never sees half a file."""
    write_text_atomic(path, json.dumps(data, indent=2) + "\n")


def copy_atomic(src: Path, dst: Path) -> Path:
    """Copy ``src`` to ``dst`` through a temp file in ``dst``'s folder and a rename."""
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(handle)
    try:
        shutil.copyfile(src, tmp_name)
        os.replace(tmp_name, dst)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return dst


@contextlib.contextmanager
def locked(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive lock for ``path`` (on ``.<name>.lock`` beside it) across processes.

    Yields whether the lock is held: always True when ``wait``; with ``wait=False`` False at once
    when another holder has it (for work that someone else doing it right now makes pointless,
    such as polling a cluster for a run that another session is polling).

    The lock belongs to this open file, so a second ``locked`` on the same path, even in the same
    process, waits for the first: never nest them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_json(path: Path, **fields) -> dict:
    """Merge ``fields`` into the JSON object at ``path`` under its lock; returns the result.

    Without the lock two writers (a session's refresh marking a cancel, the trainer writing its
    epoch) could each read the old object and the second rename would drop the first's fields.
    """
    with locked(path):
        data = {**read_json(path), **fields}
        write_json_atomic(path, data)
    return data
