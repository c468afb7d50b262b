"""Finding a card's weight file on disk and checking its sha256 before anything loads it.

Search order (docs/ARCHITECTURE.md): ``$DFI_WEIGHTS_DIR``, then ``models/weights/``, then the user cache; the
first folder holding the file wins. A file is hashed once per process for a given (path, size,
mtime): the app re-checks status on every rerun, and hashing an 80 MB Xception file each time
would cost a second.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from core.errors import WeightsHashError, WeightsMissingError
from core.hashing import file_sha256
from core.settings import Settings, get_settings
from models.cards import ModelCard

WeightsState = Literal["present", "missing", "hash_mismatch"]

_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


@dataclass(frozen=True)
class WeightsStatus:
    """Where a card's weights are and whether they may be loaded.

    ``path`` is the file found (None when missing); ``searched`` the folders looked in, in order;
    ``message`` a plain sentence for the command line and the app.
    """

    state: WeightsState
    path: Path | None
    searched: list[Path] = field(default_factory=list)
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "present"


def sha256_of(path: Path) -> str:
    """The file's sha256 hex digest, cached per (resolved path, size, mtime) for this process."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        cached = _hash_cache.get(key)
    if cached is not None:
        return cached
    value = file_sha256(path)
    with _hash_lock:
        _hash_cache[key] = value
    return value


def weights_status(card: ModelCard, settings: Settings | None = None) -> WeightsStatus:
    """Look for ``card``'s weight file along the search path and check its hash.

    Args:
        card: the model card.
        settings: paths to search; defaults to :func:`core.settings.get_settings`.

    Returns:
        present (file found, hash matches), missing (with every folder searched, or the card's
        note when no weights exist yet) or hash_mismatch (the file found and both hashes).
    """
    settings = settings or get_settings()
    searched = settings.weights_search_path()
    spec = card.weights
    if spec.sha256 is None:
        return WeightsStatus("missing", None, searched, str(missing_error(card, searched)))
    for folder in searched:
        candidate = folder / spec.file
        if candidate.is_file():
            actual = sha256_of(candidate)
            if actual != spec.sha256:
                return WeightsStatus(
                    "hash_mismatch",
                    candidate,
                    searched,
                    f"weights for {card.id} at {candidate} are damaged or a different file: sha256 "
                    f"{actual[:12]}… does not match the card's {spec.sha256[:12]}…; delete the file"
                    + (f" and run `python -m core models --download {card.id}`." if spec.url else "."),
                )
            return WeightsStatus("present", candidate, searched, f"{card.id}: {candidate} (sha256 ok)")
    return WeightsStatus("missing", None, searched, str(missing_error(card, searched)))


def missing_error(card: ModelCard, searched: list[Path]) -> WeightsMissingError:
    """The WeightsMissingError for ``card``: the folders searched, or the card's note."""
    reason = card.weights.note if card.weights.sha256 is None else None
    return WeightsMissingError(card.id, card.weights.file, searched, card.weights.url, reason=reason)


def require_weights(card: ModelCard, settings: Settings | None = None) -> Path:
    """The verified weight file for ``card``.

    Raises:
        WeightsMissingError: not found in any searched folder, or no weights exist yet.
        WeightsHashError: found, but its sha256 is not the card's.
    """
    status = weights_status(card, settings)
    if status.state == "hash_mismatch":
        raise WeightsHashError(status.message)
    if status.state != "present" or status.path is None:
        raise missing_error(card, status.searched)
    return status.path
