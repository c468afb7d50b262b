"""Streamlit state for every page: the caches and the session_state keys.

This is the one module holding ``st.cache_resource`` (loaded detectors and MTCNN, shared by every
session of the server: inference only, so sharing is safe), ``st.cache_data`` (reports, keyed by
the clip's sha256 plus everything else that changes the result) and session_state keys. Pages call
the functions here and never touch the caches directly. The clip itself (ClipSource, its temp
copy, the allowed upload types) is ``pages/_upload.py``'s, re-exported here for the pages.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import streamlit as st

import models
from core import faces
from core.analysis import analyze
from core.errors import DFIError
from core.report import write_annotated_video
from core.settings import SAMPLES_DIR, Settings, get_settings
from core.types import ClipReport
from pages._upload import UPLOAD_TYPES, ClipSource, clip_file, safe_upload_name  # noqa: F401

log = logging.getLogger(__name__)

# Widget keys (tests address widgets by these) and session_state slots.
UPLOAD_KEY = "upload"
SAMPLE_BUTTON_KEY = "try_sample"
FRAMES_KEY = "frames"
MODELS_KEY = "models"
TIMELINE_KEY = "timeline"
ANNOTATE_BUTTON_KEY = "make_annotated"
SOURCE_KEY = "dfi_source"  # "upload" or "sample": whichever the user chose last wins
REPORT_KEY = "dfi_report"  # (request key, ClipReport, note on how it was obtained) on screen
ANNOTATED_KEY = "dfi_annotated"  # (request key, mp4 bytes)
UPLOAD_HASH_KEY = "dfi_upload_hash"  # (upload file_id, sha256): hash an upload once, not per rerun

SAMPLE_CLIP = SAMPLES_DIR / "astronaut_zoom.mp4"


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


@st.cache_data(show_spinner=False, max_entries=64)
def _stored_report(sha256: str, frames: int, model_ids: tuple[str, ...], fingerprint: str,
                   _report: ClipReport | None = None) -> ClipReport:
    """The server-wide report store, keyed by clip hash, frames, models and settings.

    Called without ``_report`` it is a lookup: a miss raises _NotCached, and exceptions are never
    cached. Called with ``_report`` (excluded from the key by its underscore) it stores it. The
    analysis itself runs outside this function so its progress display is live; elements drawn
    inside a cached function would be replayed on every hit instead.
    """
    if _report is None:
        raise _NotCached
    return _report


class _NotCached(Exception):
    pass


def request_key(source: ClipSource, frames: int, model_ids: Sequence[str],
                settings: Settings | None = None) -> tuple:
    """Everything that determines a report: clip hash, frames, models, settings, weights."""
    settings = settings or get_settings()
    weights = {}
    for card_id in model_ids:
        try:
            card = models.get_card(card_id)
            status = models.weights_status(card, settings)
            weights[card_id] = [status.state, str(status.path), card.weights.sha256, list(card.band)]
        except DFIError as err:
            weights[card_id] = ["error", err.message]
    # Weights state is part of the key, so installing a missing model makes the next run use it.
    fingerprint = json.dumps({"settings": dataclasses.asdict(settings), "weights": weights},
                             sort_keys=True, default=str)
    return (source.sha256(), int(frames), tuple(model_ids), hashlib.sha256(fingerprint.encode()).hexdigest())


def session_report(key: tuple) -> tuple[ClipReport, str] | None:
    """The report this session already shows for ``key`` and its note, or None.

    Every widget click reruns the page; this keeps those reruns from even touching the cache.
    """
    held = st.session_state.get(REPORT_KEY)
    if held is not None and held[0] == key:
        return held[1], held[2]
    return None


def server_report(key: tuple, source: ClipSource) -> ClipReport | None:
    """The report for ``key`` from the server-wide cache (any session made it), or None.

    The same bytes may have been uploaded under another name, so the clip is renamed to this
    user's file name.
    """
    try:
        return _named(_stored_report(*key), source.name)
    except _NotCached:
        return None


def remember(key: tuple, report: ClipReport, note: str) -> None:
    """Hold the report on screen (and a note on how it was obtained) for this session's reruns."""
    st.session_state[REPORT_KEY] = (key, report, note)


def run_analysis(source: ClipSource, key: tuple, progress: Callable[[str, float], None]) -> ClipReport:
    """Analyse the clip (models already warm), store the report under ``key`` and return it.

    Raises:
        DFIError: bad clip, unknown model (its message is for the user).
    """
    _, frames, model_ids, _ = key
    with clip_file(source) as path:
        report = analyze(path, list(model_ids), frames=frames, progress=progress)
    report = _named(report, source.name)
    _stored_report(*key, _report=report)
    return report


def _named(report: ClipReport, name: str) -> ClipReport:
    if report.clip.name == name:
        return report
    return dataclasses.replace(report, clip=dataclasses.replace(report.clip, name=name))


def has_annotated(key: tuple) -> bool:
    """Whether this session already made the annotated video for ``key``."""
    held = st.session_state.get(ANNOTATED_KEY)
    return held is not None and held[0] == key


def annotated_video(source: ClipSource, key: tuple, report: ClipReport) -> bytes:
    """The annotated mp4 for the report on screen, made once per session and request."""
    held = st.session_state.get(ANNOTATED_KEY)
    if held is not None and held[0] == key:
        return held[1]
    fd, out_name = tempfile.mkstemp(suffix=".mp4", prefix="dfi-annotated-")
    os.close(fd)
    out = Path(out_name)
    try:
        with clip_file(source) as path:
            write_annotated_video(report, path, out)
        data = out.read_bytes()
    finally:
        out.unlink(missing_ok=True)
    st.session_state[ANNOTATED_KEY] = (key, data)
    return data


def chosen_source(uploaded) -> ClipSource | None:
    """The clip the user picked last: the uploaded file or the sample clip, or None."""
    choice = st.session_state.get(SOURCE_KEY)
    if choice == "sample" and SAMPLE_CLIP.is_file():
        return ClipSource(name=SAMPLE_CLIP.name, path=SAMPLE_CLIP)
    if uploaded is not None:
        data = uploaded.getvalue()
        # Every click reruns the page; hashing a 200 MB upload each time would be felt.
        file_id = getattr(uploaded, "file_id", None)
        held = st.session_state.get(UPLOAD_HASH_KEY)
        if file_id is None or held is None or held[0] != file_id:
            held = (file_id, hashlib.sha256(data).hexdigest())
            st.session_state[UPLOAD_HASH_KEY] = held
        return ClipSource(name=uploaded.name, data=data, known_sha256=held[1])
    return None


def choose_upload() -> None:
    """Uploader callback: a new upload replaces the sample clip."""
    st.session_state[SOURCE_KEY] = "upload"


def choose_sample() -> None:
    """Sample button callback."""
    st.session_state[SOURCE_KEY] = "sample"
