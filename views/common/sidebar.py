"""The sidebar every page shares: which detectors this server can use, and why the others can't."""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from core.errors import DFIError
from core.settings import Settings, get_settings
from views.common import loaded

log = logging.getLogger(__name__)


def weights_origin(path: Path, settings: Settings) -> str:
    """Where a weight file came from, in words: the folder it was found in decides."""
    places = (
        (settings.weights_dir, "from DFI_WEIGHTS_DIR"),
        (settings.project_weights_dir, "shipped with the app"),
        (settings.cache_dir / "weights", "downloaded to the user cache"),
    )
    for folder, words in places:
        if folder is not None and path.parent.resolve() == Path(folder).resolve():
            return words
    return f"from {path.parent}"


def unavailable_reason(card, status) -> str:
    """Why a card cannot be used, in plain words (the full technical message goes in a tooltip)."""
    if status.state == "hash_mismatch":
        return "its weights file is damaged or not the right one (the checksum does not match)"
    if card.weights.sha256 is None:
        return "not trained yet"
    return f"its weights file ({card.weights.file}) is not installed"


def render() -> None:
    """List ready detectors (id, family, where the weights came from) and unavailable ones."""
    with st.sidebar:
        st.subheader("Detectors")
        try:
            settings = get_settings()
            overview = loaded.model_overview(settings)
        except (DFIError, ValueError) as err:  # a broken card file or a bad DFI_* variable
            st.error(f"The list of detectors could not be read: {err}")
            return
        ready = [(c, s) for c, s in overview if s.ok]
        missing = [(c, s) for c, s in overview if not s.ok]
        if not ready:
            st.warning("No detector has its weights installed, so clips cannot be judged yet.")
        for card, status in ready:
            in_memory = " · in memory" if loaded.is_loaded(card.id) else ""
            st.markdown(
                f":green[●] **{card.display_name}**  \n`{card.id}` · {card.family} · "
                f"weights {weights_origin(status.path, settings)}{in_memory}",
                help=str(status.path),
            )
        if missing:
            st.caption("Not available here")
            for card, status in missing:
                st.markdown(
                    f":gray[○] **{card.display_name}**  \n`{card.id}` · {card.family} · "
                    f"{unavailable_reason(card, status)}",
                    help=status.message,
                )
