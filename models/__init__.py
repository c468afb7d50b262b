"""The model registry's public face: ``import models`` and call what is listed in ``__all__``.

The parts, lowest first: ``architectures`` (what can be built), ``cards`` (what a card says),
``weights`` (finding and checking weight files), ``defaults`` (the family defaults a person chose),
``registry`` (cards in, loaded detectors out), ``download`` (the one place that fetches), and
``detector`` (a loaded network with its card). See docs/ARCHITECTURE.md.
"""

# Importing core first sets TF_CPP_MIN_LOG_LEVEL before anything below can import TensorFlow
# (see core/__init__.py); named here so the dependence is visible, not a side effect relied on.
import core  # noqa: F401
from models.architectures import ARCHITECTURES, Architecture
from models.cards import SHIPPED_CARDS_DIR, CardError, ModelCard
from models.download import download_weights
from models.registry import build_detector, build_model, default_model_ids, get_card, list_models, load_model
from models.weights import WeightsStatus, weights_status

__all__ = [
    "ARCHITECTURES",
    "SHIPPED_CARDS_DIR",
    "Architecture",
    "CardError",
    "ModelCard",
    "WeightsStatus",
    "build_detector",
    "build_model",
    "default_model_ids",
    "download_weights",
    "get_card",
    "list_models",
    "load_model",
    "weights_status",
]
