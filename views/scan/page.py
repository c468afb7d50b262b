"""Scan page: analyse every clip of a folder inside the data folder, here or on the Ray cluster.

Thin on purpose: pick a folder, detectors and frames; Start runs ``python -m core scan`` in the
background (core.scan.launch) so the page stays responsive and the scan outlives the tab; a
fragment rerun every few seconds reads its progress back from its RESULTS folder and offers Stop;
the results table and the picked clip's report are views/scan/results.py. Only folders inside the
data root are accepted, and the cluster is only ever the configured one (``DFI_RAY_ADDRESS``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

import models
from core.errors import DFIError
from core.scan import launch
from core.scan.results import ResultsFolder
from core.settings import get_settings
from views.common import admin
from views.scan import state as scan_state
from views.scan.results import render_results

log = logging.getLogger(__name__)

FRAME_CHOICES = (8, 16, 24, 32, 48, 64)
HERE = "This computer"
REFRESH_S = 2.0


def _controls(settings) -> tuple[Path | None, list[str], int, str | None]:
    """Folder, detectors, frames and where; the folder is None until one is given."""
    choices = scan_state.folder_choices(settings)
    picked = st.selectbox(
        "Folder to scan (every video in it and its sub-folders)",
        [*choices, scan_state.OTHER_FOLDER],
        key=scan_state.SCAN_FOLDER_KEY,
        help=f"Only folders inside the data folder ({settings.data_root}) can be scanned.",
    )
    folder = choices.get(picked)
    if picked == scan_state.OTHER_FOLDER:
        typed = st.text_input(
            "Folder (a path inside the data folder)",
            key=scan_state.SCAN_FOLDER_TEXT_KEY,
            placeholder="e.g. uploads/today",
        )
        folder = scan_state.typed_folder(settings, typed) if typed.strip() else None
    cards = {card.id: card for card in models.list_models(settings)}
    models_col, frames_col = st.columns([3, 1])
    model_ids = models_col.multiselect(
        "Detectors",
        list(cards),
        key=scan_state.SCAN_MODELS_KEY,
        default=[i for i in models.default_model_ids(settings) if i in cards],
        format_func=lambda i: f"{cards[i].display_name} ({i})",
    )
    usual = max([c for c in FRAME_CHOICES if c <= settings.default_frames] or [FRAME_CHOICES[0]])
    frames = frames_col.select_slider("Frames per clip", FRAME_CHOICES, value=usual, key=scan_state.SCAN_FRAMES_KEY)
    ray_address = None
    if settings.ray_address:  # the configured cluster only: a page never sends work to a typed address
        cluster = f"Ray cluster ({settings.ray_address})"
        where = st.radio("Where", [HERE, cluster], key=scan_state.SCAN_WHERE_KEY, horizontal=True)
        ray_address = settings.ray_address if where == cluster else None
    return folder, model_ids, int(frames), ray_address


def _start(settings, folder: Path, model_ids: list[str], frames: int, ray_address: str | None) -> None:
    if not admin.is_admin():  # checked again at the action, as views/common/admin.py asks
        return
    out = launch.start(folder, model_ids, frames, settings, ray_address)
    scan_state.watch(out)
    st.toast(f"Scanning {folder.name}…", icon=":material/play_arrow:")


@st.fragment(run_every=REFRESH_S)
def _progress(out: Path) -> None:
    """Live progress of the watched scan; when it has ended, the whole page reruns once to show it."""
    status = launch.status(out)
    state = status["state"]
    if status["phase"] not in ("starting", "running"):
        if st.session_state.get("dfi_scan_live") == str(out):
            st.session_state.pop("dfi_scan_live")
            st.rerun()  # the scan ended while watched: redraw the page with its final table
        return
    st.session_state["dfi_scan_live"] = str(out)
    rows = ResultsFolder(out).rows()
    total = int(state.get("total") or 0)
    done = len(rows)
    where = "on the Ray cluster" if launch.launch_info(out).get("ray_address") else "on this computer"
    text = f"{done} of {total or '?'} clips done {where}"
    seconds = [r["seconds"] for r in rows if r.get("seconds")]
    workers = state.get("workers") or 1
    if seconds and total:
        per_min = 60.0 * workers / (sum(seconds) / len(seconds))
        text += f" · about {per_min:.1f} clips/min · about {(total - done) / per_min:.1f} min left"
    st.progress(done / total if total else 0.0, text=text if status["phase"] == "running" else "Starting the scan…")
    if admin.is_admin() and st.button("Stop", key=scan_state.SCAN_STOP_KEY, icon=":material/stop_circle:"):
        launch.stop(out)
        st.toast("Stopping: the clips being analysed finish, everything done is kept.")


def _describe(out: Path) -> None:
    info, status = launch.launch_info(out), launch.status(out)
    summary = status["state"].get("summary") or {}
    phase = status["phase"]
    st.subheader(f"Scan of `{info.get('src', '?')}`")
    if phase == "finished":
        st.success(
            f"Finished: {summary.get('total', 0)} clips, {summary.get('ok', 0)} analysed, "
            f"{summary.get('no_face', 0)} without a face, {summary.get('errors', 0)} failed.",
            icon=":material/check_circle:",
        )
    elif phase == "stopped":
        st.warning("Stopped: the table holds the clips done so far; starting the same folder again scans the rest.")
    elif phase == "failed":
        st.error(f"The scan stopped with an error: {status['error']}", icon=":material/error:")


def _page() -> None:
    st.title("Scan a folder of clips")
    st.write(
        "Every video in a folder (and its sub-folders) is analysed once by the detectors you pick, "
        "on this computer or on the configured Ray cluster. Results appear as clips finish."
    )
    settings = get_settings()
    folder, model_ids, frames, ray_address = _controls(settings)
    if folder is None:
        st.info("Type the name of a folder inside the data folder.", icon=":material/folder:")
    elif not model_ids:
        st.info("Pick at least one detector.", icon=":material/tune:")
    elif admin.require("start a scan") and st.button(
        "Start the scan", key=scan_state.SCAN_START_KEY, type="primary", icon=":material/play_arrow:"
    ):
        _start(settings, folder, model_ids, frames, ray_address)

    scans = launch.list_scans(settings)
    out = scan_state.watched(settings)
    if out is None:
        return
    st.divider()
    if len(scans) > 1:
        labels = {str(p): f"{p.name}: {launch.launch_info(p).get('src', '?')}" for p in scans}
        picked = st.selectbox("Scan", list(labels), index=list(labels).index(str(out)), format_func=labels.get)
        if picked != str(out):
            scan_state.watch(Path(picked))
            out = Path(picked)
    _describe(out)
    _progress(out)
    render_results(out, launch.launch_info(out).get("model_ids") or [])


try:
    _page()
except DFIError as err:
    st.error(f"{err.message}.", icon=":material/folder_off:")  # a path leads: no capital
except Exception:  # noqa: BLE001 - the page must never show a traceback
    log.exception("the Scan page failed")
    st.error("Something went wrong on the Scan page. The details are in the server log.", icon=":material/error:")
