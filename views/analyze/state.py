"""The Analyze page's state: its widget keys, session_state slots and report caches.

``st.cache_data`` holds reports keyed by the clip's sha256 plus everything else that changes the
result. The clip itself (ClipSource, its private temp copy, the allowed upload types) is
``views/common/upload.py``'s, re-exported here for the page.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import tempfile
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import streamlit as st

import models
from core.engine.analysis import analyze
from core.engine.report import write_annotated_video
from core.errors import DFIError
from core.settings import SAMPLES_DIR, Settings, get_settings
from core.types import ClipReport
from views.common.loaded import loaded_model, weights_fingerprint
from views.common.upload import UPLOAD_TYPES, ClipSource, SpooledUpload, clip_file, safe_upload_name  # noqa: F401

log = logging.getLogger(__name__)
# Widget keys (tests address widgets by these) and session_state slots.
UPLOAD_KEY = "upload"
SAMPLE_BUTTON_KEY = "try_sample"
FRAMES_KEY = "frames"
MODELS_KEY = "models"
TIMELINE_KEY = "timeline"
ANNOTATE_BUTTON_KEY = "make_annotated"
HEATMAPS_TOGGLE_KEY = "show_heatmaps"
HEATMAPS_ZIP_KEY = "download_heatmaps"
SOURCE_KEY = "dfi_source"  # "upload" or "sample": whichever the user chose last wins
REPORT_KEY = "dfi_report"  # (request key, ClipReport, note on how it was obtained) on screen
ANNOTATED_KEY = "dfi_annotated"  # (request key, AnnotatedVideo): the mp4 in a private temp file
UPLOAD_HASH_KEY = "dfi_upload_hash"  # (upload file_id, SpooledUpload): hash and spool an upload once
SAMPLE_CLIP = SAMPLES_DIR / "astronaut_zoom.mp4"


# 16 reports: each keeps its crops at most KEEP_CROP_SIDE (256 px) on a side, so at most 128 x 192 KB
# = 25 MB per report, 400 MB for the whole store in the worst case (4K close-ups, 128 frames).
@st.cache_data(show_spinner=False, max_entries=16)
def _stored_report(
    sha256: str, frames: int, model_ids: tuple[str, ...], fingerprint: str, _report: ClipReport | None = None
) -> ClipReport:
    """The server-wide report store, keyed by clip hash, frames, models and settings.

    Called without ``_report`` it is a lookup: a miss raises NotCached, and exceptions are never
    cached. Called with ``_report`` (excluded from the key by its underscore) it stores it. The
    analysis itself runs outside this function so its progress display is live; elements drawn
    inside a cached function would be replayed on every hit instead.
    """
    if _report is None:
        raise NotCached
    return _report


class NotCached(Exception):
    pass


def request_key(source: ClipSource, frames: int, model_ids: Sequence[str], settings: Settings | None = None) -> tuple:
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
    fingerprint = json.dumps(
        {"settings": dataclasses.asdict(settings), "weights": weights}, sort_keys=True, default=str
    )
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
    except NotCached:
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


class AnnotatedVideo:
    """An annotated mp4 in a private temp file (not bytes in session_state); removed with this object."""

    def __init__(self, source: ClipSource, report: ClipReport):
        folder = Path(tempfile.mkdtemp(prefix="dfi-annotated-"))  # mode 0700
        self._finalizer = weakref.finalize(self, shutil.rmtree, folder, True)
        self.path = folder / "annotated.mp4"
        with clip_file(source) as path:
            write_annotated_video(report, path, self.path)


def annotated_video(source: ClipSource, key: tuple, report: ClipReport) -> Path:
    """The annotated mp4 file for the report on screen, made once per session and request."""
    held = st.session_state.get(ANNOTATED_KEY)
    if held is not None and held[0] == key and held[1].path.is_file():
        return held[1].path
    st.session_state.pop(ANNOTATED_KEY, None)  # the previous clip's video goes first
    video = AnnotatedVideo(source, report)
    st.session_state[ANNOTATED_KEY] = (key, video)
    return video.path


@st.cache_data(show_spinner=False, max_entries=32)
def _stored_heatmaps(sha256: str, frames: int, fingerprint: str, card_id: str, _report: ClipReport):
    """One detector's heatmaps of a report's crops, server-wide, keyed by clip hash and card id.

    The crops depend only on the clip, the frames and the settings, and the maps on this card's
    weights (``fingerprint``: :func:`weights_fingerprint` of this card alone), not on the other
    models chosen. Maps are kept as uint8 (a quarter of the
    memory of float32, and invisible on screen); :func:`heatmaps` turns them back into [0, 1].
    """
    from core.engine.explain_export import explain_report

    found = explain_report(_report, {card_id: loaded_model(card_id)})
    if not found:
        return None
    item = found[0]
    quantised = tuple(np.round(m * 255).astype(np.uint8) for m in item.heatmaps)
    return dataclasses.replace(item, heatmaps=quantised)


def heatmaps_shown() -> bool:
    """Whether this session has the gallery's heatmaps toggle on."""
    return bool(st.session_state.get(HEATMAPS_TOGGLE_KEY))


def heatmaps(key: tuple, report: ClipReport) -> tuple[list, dict[str, str]]:
    """Heatmaps of every model that scored ``report`` (made on first request, then cached).

    Returns:
        (ModelExplanation per model that could be explained, in report order;
         {card id: plain message} for those that could not).
    """
    from core.engine.report_queries import scored_models

    sha256, frames = key[0], key[1]
    settings = get_settings()
    done, failed = [], {}
    for result in scored_models(report):
        try:
            fingerprint = weights_fingerprint([result.id], settings)
            item = _stored_heatmaps(sha256, frames, fingerprint, result.id, _report=report)
        except DFIError as err:
            failed[result.id] = err.message
            continue
        except Exception:  # noqa: BLE001 - one model's failure must not take the page down
            log.exception("heatmaps of %s for %s failed", result.id, report.clip.name)
            failed[result.id] = "its heatmaps could not be made; the details are in the server log"
            continue
        if item is not None:
            maps = tuple(m.astype(np.float32) / 255.0 for m in item.heatmaps)
            done.append(dataclasses.replace(item, heatmaps=maps))
    return done, failed


@st.cache_data(show_spinner=False, max_entries=2)
def _stored_heatmaps_zip(sha256: str, frames: int, fingerprint: str, _report: ClipReport, _explanations: list) -> bytes:
    """The heatmaps zip of one clip's explanations, server-wide (0.3 s and 8.5 MB for 32 crops and
    two detectors; at most 128 crops of one person make 34 MB, so two are kept)."""
    from core.engine.explain_export import explanations_zip

    return explanations_zip(_report, _explanations)


def heatmaps_zip(key: tuple, report: ClipReport, explanations: list) -> bytes:
    """The zip of ``explanations`` (what :func:`heatmaps` returned) for the report on screen.

    Bytes, not a callable made on click: Streamlit names a deferred download by a random id that
    every rerun revokes, so a click landing while the page reruns (a timeline dot was just
    clicked) asked for a revoked id and got nothing; bytes are named by their content, so the same
    zip keeps the same name across reruns.
    """
    fingerprint = weights_fingerprint([e.id for e in explanations], get_settings())
    return _stored_heatmaps_zip(key[0], key[1], fingerprint, _report=report, _explanations=explanations)


def chosen_source(uploaded) -> ClipSource | None:
    """The clip the user picked last: the uploaded file or the sample clip, or None."""
    choice = st.session_state.get(SOURCE_KEY)
    if choice == "sample" and SAMPLE_CLIP.is_file():
        return ClipSource(name=SAMPLE_CLIP.name, path=SAMPLE_CLIP)
    if uploaded is not None:
        # Every click reruns the page: hash the upload and write its temp file once, when it
        # arrives, then let the bytes go (Streamlit's uploader keeps its own copy meanwhile).
        file_id = getattr(uploaded, "file_id", None)
        held = st.session_state.get(UPLOAD_HASH_KEY)
        if file_id is None or held is None or held[0] != file_id or not held[1].path.is_file():
            st.session_state.pop(UPLOAD_HASH_KEY, None)  # the previous upload's file goes first
            held = (file_id, SpooledUpload(uploaded.name, uploaded.getvalue()))
            st.session_state[UPLOAD_HASH_KEY] = held
        return dataclasses.replace(held[1].source(), name=uploaded.name)
    return None


def choose_upload() -> None:
    """Uploader callback: a new upload replaces the sample clip."""
    st.session_state[SOURCE_KEY] = "upload"


def choose_sample() -> None:
    """Sample button callback."""
    st.session_state[SOURCE_KEY] = "sample"
