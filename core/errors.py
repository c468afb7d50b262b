"""Typed errors that carry a one-line message a person can act on.

The command line prints ``error: <message>`` and exits 2; the app shows the message in
``st.error``. Never put a traceback or a repr in ``message``.
"""

from __future__ import annotations

from pathlib import Path


class DFIError(Exception):
    """Base class: ``str(err)`` is the user-facing one-line message."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidClipError(DFIError):
    """The file is not a video we can read, or it is outside the limits."""


class WeightsMissingError(DFIError):
    """A card's weight file is not in any searched folder."""

    def __init__(
        self,
        card_id: str,
        filename: str,
        searched: list[Path],
        url: str | None = None,
        reason: str | None = None,
    ):
        where = ", ".join(str(p) for p in searched)
        hint = f" Get it with `python -m core models --download {card_id}`." if url else ""
        if reason:
            # No file exists anywhere yet (e.g. weights still to be trained): say why instead.
            message = f"weights for {card_id} are not available: {reason}"
        else:
            message = f"weights for {card_id} not found: looked for {filename} in {where}.{hint}"
        super().__init__(message)
        self.reason = reason
        self.card_id = card_id
        self.filename = filename
        self.searched = list(searched)
        self.url = url


class WeightsHashError(DFIError):
    """A weight file exists but its sha256 is not the one its card names."""


class UnknownModelError(DFIError):
    """A model id that is not in the registry."""


class DownloadError(DFIError):
    """An explicit weights download failed (offline, HTTP error, hash mismatch)."""
