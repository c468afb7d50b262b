"""The Compare page's state: widget keys, session_state slots, the evaluation cache and the
selection callbacks. The evaluation runs outside the cached function (as the Analyze page's
analysis does) so its progress bar is live; it goes through the scan engine (core.scan.evaluate),
in this server's process (whose detectors stay loaded between runs) or on the configured Ray cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import streamlit as st

from core.settings import Settings, get_settings
from core.types import ClipReport
from views.analyze.state import NotCached, request_key, run_analysis, server_report
from views.common.loaded import weights_fingerprint
from views.common.upload import UPLOAD_TYPES, ClipSource, clip_file, safe_upload_name  # noqa: F401

COMPARE_MODELS_KEY = "compare_models"
COMPARE_FOLDER_KEY = "compare_folder"
COMPARE_FOLDER_TEXT_KEY = "compare_folder_text"
COMPARE_FRAMES_KEY = "compare_frames"
COMPARE_WHERE_KEY = "compare_where"
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


def compare_request_key(
    folder: Path, clips, model_ids: Sequence[str], frames: int, settings: Settings | None = None
) -> tuple:
    """Everything that determines an evaluation: folder contents (core.evaluation.compare), models, frames."""
    from core.evaluation.compare import folder_fingerprint

    settings = settings or get_settings()
    return (
        str(folder),
        folder_fingerprint(clips, folder),
        tuple(model_ids),
        int(frames),
        weights_fingerprint(model_ids, settings),
    )


@st.cache_data(show_spinner=False, max_entries=16)
def _stored_evaluation(
    folder: str, fingerprint: str, model_ids: tuple[str, ...], frames: int, weights: str, _result: dict | None = None
) -> dict:
    """Server-wide evaluation store (lookup without ``_result``, store with it); see _stored_report."""
    if _result is None:
        raise NotCached
    return _result


def cached_evaluation(key: tuple) -> dict | None:
    """The evaluation for ``key`` that any session of this server already ran, or None."""
    try:
        return _stored_evaluation(*key)
    except NotCached:
        return None


def held_comparison(key: tuple) -> tuple[dict, str] | None:
    """The evaluation this session shows for ``key`` and its note, or None (every click reruns the page)."""
    held = st.session_state.get(COMPARE_RESULT_KEY)
    return (held[1], held[2]) if held is not None and held[0] == key else None


def remember_comparison(key: tuple, result: dict, note: str) -> None:
    """Hold the evaluation on screen for this session's reruns (and for the selection callbacks)."""
    st.session_state[COMPARE_RESULT_KEY] = (key, result, note)


def run_comparison(key: tuple, clips, on_clip: Callable[[dict, int], None], ray_address: str | None = None) -> dict:
    """Evaluate the models on the clips, store the result under ``key`` and return it.

    ``on_clip(row, clips_done)`` is called after each clip. ``ray_address`` (the configured
    cluster, never a typed one) runs the scan there; its progress arrives as the job writes it.
    A click on the page during the run (its Stop button, or any other widget) makes Streamlit stop
    this script at the next element update, i.e. when ``on_clip`` redraws the progress bar: that is
    how the run is cancelled between clips (a scan on the cluster is stopped with it: the engine
    stops the job when it is interrupted). The running marker set here then tells the next run
    that the evaluation was stopped.
    """
    from core.scan.evaluate import evaluate

    folder, _, model_ids, frames, _ = key
    st.session_state[COMPARE_RUNNING_KEY] = {"done": 0, "total": len(clips)}

    def counted(row: dict) -> None:
        st.session_state[COMPARE_RUNNING_KEY]["done"] += 1
        on_clip(row, st.session_state[COMPARE_RUNNING_KEY]["done"])

    try:
        result = evaluate(Path(folder), list(model_ids), frames, clips=clips, on_clip=counted, ray_address=ray_address)
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
    from views.figures.compare_charts import clip_at_point

    points = st.session_state[COMPARE_SCATTER_KEY]["selection"]["points"]
    _selected_clip_from(points, result_key, lambda point, _: clip_at_point(point))


def pick_from_table(result_key: tuple) -> None:
    """Per-clip table on_select callback: the selected row's clip becomes the one shown below."""
    rows = st.session_state[COMPARE_TABLE_KEY]["selection"]["rows"]
    _selected_clip_from(
        rows, result_key, lambda row, result: result["clips"][row]["path"] if 0 <= row < len(result["clips"]) else None
    )


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
