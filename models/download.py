"""The one explicit way to fetch a card's weights: stream, verify sha256, then rename into place.

The file is streamed into a private temporary file (mode 0600, created by ``tempfile.mkstemp``)
in the cache's weights folder and only renamed to its real name once its sha256 matches the card,
so a half-downloaded or tampered file never sits where the loader looks.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import requests

from core.errors import DownloadError
from core.settings import Settings, get_settings

Progress = Callable[[int, "int | None"], None]  # (bytes so far, total bytes or None)

_CHUNK = 1 << 20
MAX_DOWNLOAD_BYTES = 2 << 30  # far above any card's file; stops a runaway or hostile response
TIMEOUT_S = (10, 60)  # connect, read (between chunks)


def download_weights(
    card_id: str, settings: Settings | None = None, progress: Progress | None = None
) -> Path:
    """Download ``card_id``'s weights into ``<cache_dir>/weights/`` unless already present.

    Args:
        card_id: a registry id such as ``meso4.df``.
        settings: paths; defaults to :func:`core.settings.get_settings`.
        progress: optional callable(bytes_done, bytes_total_or_None), called after each chunk.

    Returns:
        The verified file: the one already on the search path, or the newly downloaded one.

    Raises:
        UnknownModelError: no such id.
        DownloadError: the card has no address or hash, or the download failed (offline, HTTP
            error, wrong sha256); nothing is left behind.
    """
    from models import get_card, weights_status  # the registry imports this module

    settings = settings or get_settings()
    card = get_card(card_id, settings)
    spec = card.weights
    if spec.sha256 is None:
        raise DownloadError(f"nothing to download for {card.id}: {spec.note}")
    if not spec.url:
        raise DownloadError(f"the card of {card.id} gives no download address for {spec.file}")
    status = weights_status(card, settings)
    if status.state == "present" and status.path is not None:
        return status.path
    folder = settings.cache_dir / "weights"
    target = folder / spec.file
    if status.state == "hash_mismatch" and status.path != target:
        # The damaged file is earlier on the search path and would shadow the download.
        raise DownloadError(status.message)
    folder.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{spec.file}.", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            digest = _stream(spec.url, out, card.id, progress)
        if digest != spec.sha256:
            raise DownloadError(
                f"download of {card.id} from {spec.url} has sha256 {digest[:12]}…, not the card's "
                f"{spec.sha256[:12]}…; the file was discarded"
            )
        os.replace(tmp, target)  # atomic on one filesystem: readers see no file or the whole file
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _stream(url: str, out, card_id: str, progress: Progress | None) -> str:
    """Write the body of ``url`` to ``out``; returns its sha256 hex digest."""
    digest = hashlib.sha256()
    try:
        with requests.get(url, stream=True, timeout=TIMEOUT_S) as response:
            if response.status_code != 200:
                raise DownloadError(
                    f"could not download {card_id} weights from {url}: HTTP {response.status_code} "
                    f"{response.reason or ''}".rstrip()
                )
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            for chunk in response.iter_content(_CHUNK):
                done += len(chunk)
                if done > MAX_DOWNLOAD_BYTES:
                    raise DownloadError(f"download of {card_id} from {url} is larger than expected; stopped")
                digest.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(done, total)
    except requests.RequestException as exc:
        raise DownloadError(
            f"could not download {card_id} weights from {url}: {_plain_reason(exc)}"
        ) from None
    return digest.hexdigest()


def _plain_reason(exc: requests.RequestException) -> str:
    """A short, one-line cause (requests' own messages nest whole reprs of urllib3 errors)."""
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect (offline, or the server refused the connection)"
    if isinstance(exc, requests.Timeout):
        return "the server did not answer in time"
    return type(exc).__name__
