"""The detectors and the MTCNN face finder this server holds in memory, shared by every page.

``st.cache_resource`` keeps one loaded instance per card id (inference only, so sharing between
sessions is safe). Pages ask here and never touch the cache directly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence

import streamlit as st

import models
from core.engine import faces
from core.errors import DFIError
from core.settings import Settings, get_settings
from views.common.upload import UPLOAD_TYPES, ClipSource, clip_file, safe_upload_name  # noqa: F401


@st.cache_resource(show_spinner=False)
def _detector_for(card_id: str):
    return models.load_model(card_id)


@st.cache_resource(show_spinner=False)
def _loaded_ids() -> set[str]:
    """Card ids whose detector this server holds in memory (one set shared by all sessions)."""
    return set()


def loaded_model(card_id: str):
    """One loaded detector per card id for the whole server.

    Raises:
        WeightsMissingError, WeightsHashError: the card's weights cannot be used (not cached, so
            installing them later works without a restart).
    """
    detector = _detector_for(card_id)
    _loaded_ids().add(card_id)
    return detector


def is_loaded(card_id: str) -> bool:
    """Whether this server already holds the card's detector in memory (loads nothing)."""
    return card_id in _loaded_ids()


@st.cache_resource(show_spinner=False)
def face_detector():
    """The server's single MTCNN instance."""
    return faces.get_detector()


def warm_up(model_ids: Sequence[str]) -> list[str]:
    """Load MTCNN and the given detectors now, so the first analysis is not a cold start.

    Returns:
        The ids that could not be loaded (their cards show why when analysed).
    """
    face_detector()
    failed = []
    for card_id in model_ids:
        try:
            loaded_model(card_id)
        except DFIError:
            failed.append(card_id)  # shown as UNAVAILABLE on its card; nothing to do here
    return failed


def model_overview(settings: Settings | None = None) -> list[tuple[models.ModelCard, models.WeightsStatus]]:
    """Every registered card with the state of its weights (hashes are cached per process)."""
    settings = settings or get_settings()
    return [(card, models.weights_status(card, settings)) for card in models.list_models(settings)]


def weights_fingerprint(model_ids: Sequence[str], settings: Settings) -> str:
    """A hash of each card's weights state, file, sha256 and decision band, and of the settings."""
    weights = {}
    for card_id in model_ids:
        try:
            card = models.get_card(card_id, settings)
            status = models.weights_status(card, settings)
            weights[card_id] = [status.state, str(status.path), card.weights.sha256, card.threshold, list(card.band)]
        except DFIError as err:
            weights[card_id] = ["error", err.message]
    text = json.dumps({"settings": dataclasses.asdict(settings), "weights": weights}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
