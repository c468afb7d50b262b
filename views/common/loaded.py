"""The detectors and the MTCNN face finder this server holds in memory, shared by every page.

``st.cache_resource`` keeps one loaded instance per card id (inference only, so sharing between
sessions is safe). Pages ask here and never touch the cache directly.

:func:`start_preload` (called by app.py on every run, acting once per process) loads MTCNN and the
default detectors in a background thread (and runs each once on blank crops, see :func:`_warm`),
so the first visitor's first clip does not wait for TensorFlow and the weights (about 10 s on a
2-core CPU); pages ask :func:`preload_done` to say
"Loading detectors…" honestly meanwhile. It fills the same process-wide caches the pages use
(``models.load_model`` and ``faces.get_face_finder``, each built once behind a lock), so a page that
asks for a detector the thread is still loading waits for that one load, never makes a second.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
from collections.abc import Sequence

import numpy as np
import streamlit as st

import models
from core.engine import faces
from core.errors import DFIError
from core.settings import Settings, get_settings
from views.common.keras_state import keep_keras_state
from views.common.upload import UPLOAD_TYPES, ClipSource, clip_file, safe_upload_name  # noqa: F401

log = logging.getLogger(__name__)


class Preload:
    """The background loading of MTCNN and the default detectors: started once per process."""

    def __init__(self, model_ids: Sequence[str]):
        self.model_ids = tuple(model_ids)
        self.started = time.monotonic()
        self.loaded: set[str] = set()
        self.done = threading.Event()
        self.seconds: float | None = None  # how long it took, once done

    def run(self) -> None:
        try:
            faces.get_face_finder()
            for card_id in self.model_ids:
                try:
                    _warm(models.load_model(card_id))
                    self.loaded.add(card_id)
                except DFIError as err:  # its card shows why when analysed
                    log.info("preload: %s is unavailable: %s", card_id, err.message)
        except Exception as exc:  # noqa: BLE001 - a page then loads on demand and shows the real error
            # One line, not a traceback: preloading only saves the first visitor's wait, and the
            # page that needs the detector loads it again and reports any real problem itself.
            log.warning(
                "preloading the detectors failed (%s: %s); pages load them when first needed",
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
        finally:
            self.seconds = time.monotonic() - self.started
            self.done.set()

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _warm(detector) -> None:
    """Two tiny forward passes, so the first clip's pass neither builds nor retraces the graph.

    Keras builds its predict function on the first call and retraces it for a second batch size,
    then generalises the batch dimension: measured on Xception (160 px, 2-core CPU, fresh process)
    a first pass of 32 crops took 1.84 s against 1.30 s warm; after passes of 1 and 2, 1.35 s.
    """
    blank = np.zeros((detector.card.input_size, detector.card.input_size, 3), np.uint8)
    for n in (1, 2):
        detector.predict([blank] * n)


_preload_lock = threading.Lock()
_preload: Preload | None = None


def start_preload(settings: Settings | None = None) -> Preload:
    """Start loading MTCNN and the default detectors in a daemon thread, once per process.

    The first call imports TensorFlow first (see below), then returns while the models load;
    later calls return the same Preload at once.
    """
    global _preload
    with _preload_lock:
        if _preload is None:
            # TensorFlow's first import must not run in two threads at once: a session thread
            # importing it beside the loading thread deadlocked or left half-initialised modules.
            # So the imports happen here, in the first run's thread (a few seconds, once per
            # process); only building and loading the models goes to the background.
            import keras  # noqa: F401
            import mtcnn  # noqa: F401

            # Before any build: Streamlit's end-of-run clear_session would otherwise restart the
            # layer names of a build in another thread ("conv2d is used 2 times"; keras_state.py).
            keep_keras_state()

            try:
                ids = models.default_model_ids(settings or get_settings())
            except DFIError:  # a broken card: the sidebar says so; load only MTCNN
                ids = []
            _preload = Preload(ids)
            threading.Thread(target=_preload.run, name="dfi-preload", daemon=True).start()
        return _preload


def preload_done() -> bool:
    """Whether the background loading has finished (True when none was started)."""
    return _preload is None or _preload.done.is_set()


def preload_elapsed() -> float:
    """Seconds since the background loading started (0 when none was)."""
    return 0.0 if _preload is None else _preload.elapsed()


def wait_for_preload(timeout: float | None = None) -> bool:
    """Block until the background loading is done (or ``timeout``); True when it is."""
    return _preload is None or _preload.done.wait(timeout)


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
    return card_id in _loaded_ids() or (_preload is not None and card_id in _preload.loaded)


@st.cache_resource(show_spinner=False)
def face_finder():
    """The server's single MTCNN instance."""
    return faces.get_face_finder()


def warm_up(model_ids: Sequence[str]) -> list[str]:
    """Load MTCNN and the given detectors now, so the first analysis is not a cold start.

    Returns:
        The ids that could not be loaded (their cards show why when analysed).
    """
    face_finder()
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
