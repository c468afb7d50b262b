"""The model registry: cards in, loaded detectors out.

Cards come from ``models/cards/`` (shipped) and the user's card folder; weights are found and
checked by sha256 in ``models/weights.py``; networks are built from ``models/architectures.py``.
Nothing here touches the network: downloads happen only through ``models/download.py``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from core.errors import UnknownModelError
from core.settings import Settings, get_settings
from models.architectures import ARCHITECTURES, FAMILIES, FAMILY_OF
from models.cards import SHIPPED_CARDS_DIR, CardError, ModelCard, read_cards
from models.defaults import read_default_choices
from models.weights import require_weights, weights_status

if TYPE_CHECKING:
    import keras

    from models.detector import Detector


_loaded: dict[tuple[str, str], Detector] = {}
_load_lock = threading.Lock()


def list_models(settings: Settings | None = None) -> list[ModelCard]:
    """Every card, sorted by id: shipped ones, then the user's (which win on the same id).

    Raises:
        CardError: a card file is invalid (the message names the file).
    """
    settings = settings or get_settings()
    cards = read_cards([SHIPPED_CARDS_DIR, settings.user_cards_dir], FAMILY_OF)
    for card in cards.values():
        arch = ARCHITECTURES[card.architecture]
        if not arch.accepts(card.input_size):
            takes = f"{arch.input_size}px" if arch.min_input is None else f"{arch.min_input}-1024px"
            raise CardError(
                f"model card {card.source} is invalid: {card.architecture} takes {takes} input, not {card.input_size}"
            )
    return list(cards.values())


def get_card(model_id: str, settings: Settings | None = None) -> ModelCard:
    """The card with this id.

    Raises:
        UnknownModelError: no such id; the message lists the valid ones.
    """
    cards = {card.id: card for card in list_models(settings)}
    if model_id not in cards:
        raise UnknownModelError(f"unknown model {model_id!r}: must be one of {', '.join(cards)}")
    return cards[model_id]


def build_model(card: ModelCard) -> keras.Model:
    """A fresh, weightless model of the card's architecture (for loading, training and tests).

    Safe beside builds in other threads: Keras names unnamed layers from counters kept per thread.
    In the server, Streamlit used to reset those counters for every thread after each run, which
    broke builds ('The name "conv2d" is used 2 times'); views/common/keras_state.py stops that.
    """
    return ARCHITECTURES[card.architecture].build(card.input_size)


def build_detector(card: ModelCard, weights: bool = True, settings: Settings | None = None) -> Detector:
    """A new, uncached detector for ``card``.

    Args:
        card: the model card.
        weights: load the card's verified weights; False keeps the builder's random
            initialisation (contract tests, ``bench`` without weights), never for verdicts.
        settings: where to look for the weights.

    Raises:
        WeightsMissingError / WeightsHashError: as :func:`load_model`.
        CardError: the weight file does not fit the card's architecture.
    """
    from models.detector import Detector

    path = require_weights(card, settings) if weights else None
    model = build_model(card)
    if path is not None:
        try:
            # Weights only: an HDF5 weights file, never a pickled or serialised model.
            model.load_weights(str(path))
        except (ValueError, OSError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CardError(f"weights {path} do not fit card {card.id} ({card.architecture}): {reason}") from None
    return Detector(card, model)


def load_model(model_id: str, settings: Settings | None = None) -> Detector:
    """The detector for ``model_id`` with its verified weights, built once per process.

    Cached per (card id, weights path, sha256) behind a lock, so concurrent sessions share one instance;
    the sha256 is checked (hashed once per file and process) before anything is loaded.

    Raises:
        UnknownModelError: no such id.
        WeightsMissingError: the weight file is in no searched folder (or none exists yet).
        WeightsHashError: the file found is not the one the card names.
        CardError: the weight file does not fit the card's architecture.
    """
    card = get_card(model_id, settings)
    path = require_weights(card, settings)
    # The hash is part of the key: a long-lived app process must not keep serving the old model
    # after a training run rewrites the same file.
    key = (card.id, str(path), card.weights.sha256 or "")
    with _load_lock:
        detector = _loaded.get(key)
        if detector is None:
            detector = build_detector(card, weights=True, settings=settings)
            _loaded[key] = detector
        elif detector.card != card:
            # Same weights, edited card (threshold, band, text): reuse the loaded network.
            detector = detector.with_card(card)
            _loaded[key] = detector
    return detector


def _auc(card: ModelCard) -> tuple[bool, float]:
    """How a card ranks for the default: measured on sources it never saw first, then its AUC.

    An AUC measured on clips of sources the model trained on (held-out clips of the same datasets)
    flatters it; one measured on whole sources it never saw is what a new user's clip meets. So
    ``metrics.out_of_source`` cards outrank the others whatever their numbers.
    """
    value = card.metrics.get("video_auc")
    auc = float(value) if isinstance(value, (int, float)) else float("-inf")
    return card.metrics.get("out_of_source") is True, auc


def default_model_ids(settings: Settings | None = None) -> list[str]:
    """One card id per family: the user's choice (models/defaults.py) while its weights are
    present, else the best video AUC among cards whose weights are present (cards measured out of
    source first, see :func:`_auc`).

    A family with no usable weights still contributes its best card, so the analysis can report
    it as unavailable. Ties go to the first id in sorted order.
    """
    settings = settings or get_settings()
    cards = list_models(settings)
    choices = read_default_choices(settings)
    chosen = []
    for family in FAMILIES:
        members = [card for card in cards if card.family == family]
        if not members:
            continue
        present = [card for card in members if weights_status(card, settings).ok]
        preferred = next((card for card in present if card.id == choices.get(family)), None)
        chosen.append((preferred or max(present or members, key=_auc)).id)
    return chosen
