"""Streamlit state for every page: the caches and the session_state keys.

This is the one module holding ``st.cache_resource`` (loaded detectors and MTCNN, shared by every
session of the server: inference only, so sharing is safe), ``st.cache_data`` (reports, keyed by
the clip's sha256 plus everything else that changes the result) and session_state keys. Pages call
the functions here and never touch the caches directly. The clip itself (ClipSource, its temp
copy, the allowed upload types) is ``views/_upload.py``'s, re-exported here for the pages.
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

import numpy as np
import streamlit as st

import models
from core import faces
from core.analysis import analyze
from core.errors import DFIError
from core.report import write_annotated_video
from core.settings import SAMPLES_DIR, Settings, get_settings
from core.types import ClipReport
from views._upload import UPLOAD_TYPES, ClipSource, clip_file, safe_upload_name  # noqa: F401

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


@st.cache_data(show_spinner=False, max_entries=32)
def _stored_heatmaps(sha256: str, frames: int, fingerprint: str, card_id: str, _report: ClipReport):
    """One detector's heatmaps of a report's crops, server-wide, keyed by clip hash and card id.

    The crops depend only on the clip, the frames and the settings, and the maps on this card's
    weights (``fingerprint``: :func:`weights_fingerprint` of this card alone), not on the other
    models chosen. Maps are kept as uint8 (a quarter of the
    memory of float32, and invisible on screen); :func:`heatmaps` turns them back into [0, 1].
    """
    from core.explain_export import explain_report

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
    from core.charts import scored_models

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


# --- Compare and Models pages (issue 6) ------------------------------------------------------------
# Widget keys of views/compare.py and views/models.py, their session_state slots, the evaluation
# result cache, and the selection callbacks. The evaluation runs outside the cached function (as the
# Analyze page's analysis does) so its progress bar is live.

COMPARE_MODELS_KEY = "compare_models"
COMPARE_FOLDER_KEY = "compare_folder"
COMPARE_FOLDER_TEXT_KEY = "compare_folder_text"
COMPARE_FRAMES_KEY = "compare_frames"
COMPARE_RUN_KEY = "compare_run"
COMPARE_STOP_KEY = "compare_stop"
COMPARE_A_KEY = "compare_model_a"
COMPARE_B_KEY = "compare_model_b"
COMPARE_SCATTER_KEY = "compare_scatter"
COMPARE_TABLE_KEY = "compare_clip_table"
COMPARE_RESULT_KEY = "dfi_compare_result"  # (request key, evaluation result, note) on screen
COMPARE_RUNNING_KEY = "dfi_compare_running"  # {"done", "total"} while an evaluation runs
COMPARE_CLIP_KEY = "dfi_compare_clip"  # (request key, clip path) picked in the scatter or the table
COMPARE_CLIP_REPORT_KEY = "dfi_compare_clip_report"  # ((request key, clip path), ClipReport)
MODELS_UPLOAD_KEY = "models_upload"  # plus a generation number: see models_upload_key()
MODELS_ARCH_KEY = "models_architecture"
MODELS_SAVE_KEY = "models_save"
MODELS_CHECK_KEY = "dfi_models_check"  # (file id, architecture, WeightsCheck | error message)
MODELS_NOTICE_KEY = "dfi_models_notice"  # ("success" or "error", text) shown once after a rerun
MODELS_UPLOAD_GENERATION_KEY = "dfi_models_upload_generation"


def default_key(family: str) -> str:
    """Widget key of the default-model choice for ``family`` on the Models page."""
    return f"models_default_{family}"


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


def compare_request_key(folder: Path, clips, model_ids: Sequence[str], frames: int,
                        settings: Settings | None = None) -> tuple:
    """Everything that determines an evaluation: folder contents (core.compare_data), models, frames."""
    from core.compare_data import folder_fingerprint

    settings = settings or get_settings()
    return (str(folder), folder_fingerprint(clips, folder), tuple(model_ids), int(frames),
            weights_fingerprint(model_ids, settings))


@st.cache_data(show_spinner=False, max_entries=16)
def _stored_evaluation(folder: str, fingerprint: str, model_ids: tuple[str, ...], frames: int,
                       weights: str, _result: dict | None = None) -> dict:
    """Server-wide evaluation store (lookup without ``_result``, store with it); see _stored_report."""
    if _result is None:
        raise _NotCached
    return _result


def cached_evaluation(key: tuple) -> dict | None:
    """The evaluation for ``key`` that any session of this server already ran, or None."""
    try:
        return _stored_evaluation(*key)
    except _NotCached:
        return None


def held_comparison(key: tuple) -> tuple[dict, str] | None:
    """The evaluation this session shows for ``key`` and its note, or None (every click reruns the page)."""
    held = st.session_state.get(COMPARE_RESULT_KEY)
    return (held[1], held[2]) if held is not None and held[0] == key else None


def remember_comparison(key: tuple, result: dict, note: str) -> None:
    """Hold the evaluation on screen for this session's reruns (and for the selection callbacks)."""
    st.session_state[COMPARE_RESULT_KEY] = (key, result, note)


def run_comparison(key: tuple, clips, on_clip: Callable[[dict, int], None]) -> dict:
    """Evaluate the models on the clips, store the result under ``key`` and return it.

    ``on_clip(row, clips_done)`` is called after each clip. A click on the page during the run (its Stop button, or
    any other widget) makes Streamlit stop this script at the next element update, i.e. when
    ``on_clip`` redraws the progress bar: that is how the run is cancelled between clips. The
    running marker set here then tells the next run that the evaluation was stopped.
    """
    from core.evaluate import evaluate

    folder, _, model_ids, frames, _ = key
    st.session_state[COMPARE_RUNNING_KEY] = {"done": 0, "total": len(clips)}

    def counted(row: dict) -> None:
        st.session_state[COMPARE_RUNNING_KEY]["done"] += 1
        on_clip(row, st.session_state[COMPARE_RUNNING_KEY]["done"])

    try:
        result = evaluate(Path(folder), list(model_ids), frames, clips=clips, on_clip=counted)
    except Exception:
        # A failure (not a stop, which is a BaseException) is reported as such, not as "stopped".
        st.session_state.pop(COMPARE_RUNNING_KEY, None)
        raise
    st.session_state.pop(COMPARE_RUNNING_KEY, None)
    _stored_evaluation(*key, _result=result)
    return result


def stopped_run() -> dict | None:
    """``{"done", "total"}`` of an evaluation that was stopped before it ended (once), else None."""
    return st.session_state.pop(COMPARE_RUNNING_KEY, None)


def _selected_clip_from(points_or_rows: list, result_key: tuple, to_path: Callable) -> None:
    result = st.session_state.get(COMPARE_RESULT_KEY)
    if result is None or result[0] != result_key or not points_or_rows:
        return
    known = {clip["path"] for clip in result[1]["clips"]}
    path = to_path(points_or_rows[0], result[1])
    # The selection comes from the browser: only a clip of this evaluation may be opened.
    if path in known:
        st.session_state[COMPARE_CLIP_KEY] = (result_key, path)


def pick_from_scatter(result_key: tuple) -> None:
    """Scatter on_select callback: the clicked point's clip becomes the one shown below."""
    from core.compare_charts import clip_at_point

    points = st.session_state[COMPARE_SCATTER_KEY]["selection"]["points"]
    _selected_clip_from(points, result_key, lambda point, _: clip_at_point(point))


def pick_from_table(result_key: tuple) -> None:
    """Per-clip table on_select callback: the selected row's clip becomes the one shown below."""
    rows = st.session_state[COMPARE_TABLE_KEY]["selection"]["rows"]
    _selected_clip_from(rows, result_key,
                        lambda row, result: result["clips"][row]["path"] if 0 <= row < len(result["clips"]) else None)


def selected_clip(result_key: tuple) -> str | None:
    """The clip picked for ``result_key``'s evaluation, or None."""
    held = st.session_state.get(COMPARE_CLIP_KEY)
    return held[1] if held is not None and held[0] == result_key else None


def clip_report(result_key: tuple, clip: Path, progress: Callable[[str, float], None]) -> ClipReport:
    """The full report of one evaluated clip with the evaluation's models and frames (cached)."""
    held = st.session_state.get(COMPARE_CLIP_REPORT_KEY)
    if held is not None and held[0] == (result_key, str(clip)):
        return held[1]
    source = ClipSource(name=clip.name, path=clip)
    key = request_key(source, result_key[3], result_key[2])
    report = server_report(key, source) or run_analysis(source, key, progress)
    st.session_state[COMPARE_CLIP_REPORT_KEY] = ((result_key, str(clip)), report)
    return report


def checked_upload(uploaded, architecture: str):
    """The WeightsCheck of an uploaded weights file for ``architecture``, or its error message.

    Checked once per (upload, architecture) and held for the session: building and loading an
    Xception takes seconds, and every click reruns the page.
    """
    from models.user_weights import UserWeightsError, check_weights

    file_id = getattr(uploaded, "file_id", None) or hashlib.sha256(uploaded.getvalue()).hexdigest()
    held = st.session_state.get(MODELS_CHECK_KEY)
    if held is not None and held[:2] == (file_id, architecture):
        return held[2]
    try:
        outcome = check_weights(uploaded.getvalue(), architecture)
    except UserWeightsError as err:
        outcome = err.message
    st.session_state[MODELS_CHECK_KEY] = (file_id, architecture, outcome)
    return outcome


def models_upload_key() -> str:
    """The weights uploader's key; a new one after each save empties the uploader and its form."""
    return f"{MODELS_UPLOAD_KEY}_{st.session_state.get(MODELS_UPLOAD_GENERATION_KEY, 0)}"


def models_saved(text: str) -> None:
    """After a save: say so once, and start over with an empty uploader."""
    st.session_state[MODELS_NOTICE_KEY] = ("success", text)
    st.session_state[MODELS_UPLOAD_GENERATION_KEY] = st.session_state.get(MODELS_UPLOAD_GENERATION_KEY, 0) + 1


def models_notice(kind: str | None = None, text: str | None = None) -> tuple[str | None, str | None]:
    """Store a one-time ("success" | "error", text) notice, or with no arguments take the pending one."""
    if kind is not None:
        st.session_state[MODELS_NOTICE_KEY] = (kind, text)
        return kind, text
    return st.session_state.pop(MODELS_NOTICE_KEY, (None, None))


# --- Train page (views/train.py, issue 5) ---------------------------------------------------------
# Widget keys of the training form and the runs panel (tests address widgets by these).
TRAIN_ARCH_KEY = "train_arch"
TRAIN_INIT_KEY = "train_init"
TRAIN_TAG_KEY = "train_tag"
TRAIN_DATA_KEY = "train_data"  # a folder found under the data root
TRAIN_DATA_PATH_KEY = "train_data_path"  # or one typed in (wins when filled)
TRAIN_EPOCHS_KEY = "train_epochs"
TRAIN_BATCH_KEY = "train_batch"
TRAIN_LR_KEY = "train_lr"
TRAIN_AUGMENT_KEY = "train_augment"
TRAIN_RUNTIME_KEY = "train_runtime"
TRAIN_RAY_ADDRESS_KEY = "train_ray_address"
TRAIN_PARALLEL_KEY = "train_parallel"
TRAIN_RAY_PIP_KEY = "train_ray_pip"
TRAIN_GPUS_KEY = "train_gpus"
TRAIN_EXTRACT_KEY = "train_extract"
TRAIN_START_KEY = "train_start"
TRAIN_RUN_KEY = "train_run"
TRAIN_CANCEL_KEY = "train_cancel"
TRAIN_USE_KEY = "train_use"
TRAIN_REPLACE_KEY = "train_replace"
TRAIN_FLASH_KEY = "dfi_train_flash"  # (kind, message): the outcome of the last action, shown once


@st.cache_data(ttl=60, show_spinner=False)
def runtime_devices(backend: str, address: str):
    """The devices of the chosen runtime (core.devices.Devices), probed at most once a minute.

    Raises:
        DFIError: the Ray cluster does not answer (not cached, so a retry asks again).
    """
    from core.devices import local_devices, ray_devices

    return local_devices() if backend == "local" else ray_devices(address)


@st.cache_data(ttl=30, show_spinner=False)
def data_folder_choices(data_root: str, cache_dir: str) -> list[str]:
    """Folders a job could train on (see core.job_data.candidate_folders), rescanned every 30 s."""
    from core.job_data import candidate_folders

    settings = get_settings(data_root=Path(data_root), cache_dir=Path(cache_dir))
    return [str(p) for p in candidate_folders(settings)]


def flash(kind: str, message: str) -> None:
    """Keep an action's outcome ("success", "error", "info") to show on the next run of the page."""
    st.session_state[TRAIN_FLASH_KEY] = (kind, message)


def pop_flash() -> tuple[str, str] | None:
    """The outcome kept by :func:`flash`, once."""
    return st.session_state.pop(TRAIN_FLASH_KEY, None)

