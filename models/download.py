"""The one explicit way to fetch weights: stream, verify the hash, then rename into place.

A card's weights are checked by the card's sha256; Keras' ImageNet Xception file (the ``imagenet``
start of training, id ``imagenet-xception``) by the md5 Keras itself publishes for it. The file is
streamed into a private temporary file (mode 0600, created by ``tempfile.mkstemp``) in the target's
folder and only renamed to its real name once its hash matches, so a half-downloaded or tampered
file never sits where the loader looks.
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
from models.registry import get_card
from models.weights import weights_status

Progress = Callable[[int, "int | None"], None]  # (bytes so far, total bytes or None)

_CHUNK = 1 << 20
MAX_DOWNLOAD_BYTES = 2 << 30  # far above any card's file; stops a runaway or hostile response
TIMEOUT_S = (10, 60)  # connect, read (between chunks)

# Keras' own address and hash for the file keras.applications.Xception(weights="imagenet",
# include_top=False) fetches: the md5 is the ``file_hash`` keras/applications/xception.py passes to
# keras.utils.get_file. Module constants so tests can point them at a local server.
IMAGENET_XCEPTION_ID = "imagenet-xception"
IMAGENET_XCEPTION_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/xception/"
    "xception_weights_tf_dim_ordering_tf_kernels_notop.h5"
)
IMAGENET_XCEPTION_MD5 = "b0042744bf5b25fce3cb969f33bebb97"


def download_weights(card_id: str, settings: Settings | None = None, progress: Progress | None = None) -> Path:
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
    _fetch_verified(spec.url, target, card.id, "sha256", spec.sha256, "the card's", progress)
    return target


def download_imagenet_xception(settings: Settings | None = None, progress: Progress | None = None) -> Path:
    """Fetch Keras' ImageNet Xception (no top) file to where training reads it, unless present.

    The target is ``settings.imagenet_weights_file()`` (the ``imagenet_weights`` setting, else the
    Keras cache), so the file fetched is the one init "imagenet" loads.

    Returns:
        The file: the one already there, or the newly downloaded one, checked by Keras' md5.

    Raises:
        DownloadError: offline, an HTTP error, or an md5 other than Keras'; nothing is left behind.
    """
    target = (settings or get_settings()).imagenet_weights_file()
    if target.is_file():
        # Not re-hashed: a copy re-saved from the same weights (like ../shared/data/imagenet's)
        # loads identically but has other bytes, so Keras' md5 would wrongly refuse it.
        return target
    _fetch_verified(
        IMAGENET_XCEPTION_URL, target, IMAGENET_XCEPTION_ID, "md5", IMAGENET_XCEPTION_MD5, "Keras' published", progress
    )
    return target


def _fetch_verified(
    url: str, target: Path, name: str, algorithm: str, expected: str, whose: str, progress: Progress | None
) -> None:
    """Stream ``url`` into a temporary file beside ``target``; rename it there once its
    ``algorithm`` digest is ``expected`` (``whose`` names that hash in the mismatch message)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:  # e.g. a read-only folder named by a setting
        raise DownloadError(f"cannot save {name} weights in {target.parent}: {exc.strerror}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            digest = _stream(url, out, name, progress, algorithm)
        if digest != expected:
            raise DownloadError(
                f"download of {name} from {url} has {algorithm} {digest[:12]}…, not {whose} "
                f"{expected[:12]}…; the file was discarded"
            )
        os.replace(tmp, target)  # atomic on one filesystem: readers see no file or the whole file
    finally:
        tmp.unlink(missing_ok=True)


def _stream(url: str, out, name: str, progress: Progress | None, algorithm: str = "sha256") -> str:
    """Write the body of ``url`` to ``out``; returns its ``algorithm`` hex digest."""
    # An integrity check, not security: lets md5 work on FIPS-restricted Pythons too.
    digest = hashlib.new(algorithm, usedforsecurity=False)
    try:
        with requests.get(url, stream=True, timeout=TIMEOUT_S) as response:
            if response.status_code != 200:
                raise DownloadError(
                    f"could not download {name} weights from {url}: HTTP {response.status_code} "
                    f"{response.reason or ''}".rstrip()
                )
            total = int(response.headers.get("Content-Length") or 0) or None
            done = 0
            for chunk in response.iter_content(_CHUNK):
                done += len(chunk)
                if done > MAX_DOWNLOAD_BYTES:
                    raise DownloadError(f"download of {name} from {url} is larger than expected; stopped")
                digest.update(chunk)
                out.write(chunk)
                if progress is not None:
                    progress(done, total)
    except requests.RequestException as exc:
        raise DownloadError(f"could not download {name} weights from {url}: {_plain_reason(exc)}") from None
    return digest.hexdigest()


def _plain_reason(exc: requests.RequestException) -> str:
    """A short, one-line cause (requests' own messages nest whole reprs of urllib3 errors)."""
    if isinstance(exc, requests.ConnectionError):
        return "cannot connect (offline, or the server refused the connection)"
    if isinstance(exc, requests.Timeout):
        return "the server did not answer in time"
    return type(exc).__name__
