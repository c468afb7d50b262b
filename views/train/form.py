"""The Train page's form: model, data folder (with its summary, and face extraction when it holds
clips), settings per model, where to train (with that runtime's devices), and Start."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import models
from core.errors import DFIError
from core.jobs.data_folders import (
    DatasetSummary,
    datasets_dir,
    extraction_target,
    resolve_data_folder,
    summarize_folder,
)
from core.jobs.extraction import extraction_progress, start_extraction
from core.settings import Settings, get_settings
from views.common import admin
from views.train import actions
from views.train import state as train_state

RUNTIMES = {"local": "This computer", "ray": "A Ray cluster"}


def _apply_defaults() -> None:
    """Model changed: start from that model's usual settings (callback, so before widgets draw)."""
    defaults = actions.family_defaults(st.session_state[train_state.TRAIN_ARCH_KEY])
    st.session_state[train_state.TRAIN_EPOCHS_KEY] = defaults["epochs"]
    st.session_state[train_state.TRAIN_BATCH_KEY] = defaults["batch"]
    st.session_state[train_state.TRAIN_LR_KEY] = defaults["lr"]


def chosen_data(settings: Settings) -> tuple[Path | None, DatasetSummary | None, str | None]:
    """(folder to train on, its summary, error message) for the chosen data folder. A folder of
    clips whose faces were extracted already is replaced by the extracted face crops."""
    raw = (st.session_state.get(train_state.TRAIN_DATA_PATH_KEY) or "").strip() or st.session_state.get(
        train_state.TRAIN_DATA_KEY
    )
    if not raw:
        return None, None, None
    try:
        folder = resolve_data_folder(raw, settings)
    except DFIError as err:
        return None, None, err.message
    summary = summarize_folder(folder)
    if summary.kind == "raw" and extraction_progress(extraction_target(folder, settings)).finished:
        target = extraction_target(folder, settings)
        return target, summarize_folder(target), None
    return folder, summary, None


def _summary_table(summary: DatasetSummary) -> None:
    splits = sorted(set(summary.clips) | set(summary.crops))
    rows = [
        {
            "Part": split,
            "Real clips or photos": summary.clips.get(split, {}).get("real", 0),
            "Fake clips or photos": summary.clips.get(split, {}).get("fake", 0),
            **(
                {
                    "Real faces": summary.crops.get(split, {}).get("real", 0),
                    "Fake faces": summary.crops.get(split, {}).get("fake", 0),
                }
                if summary.kind == "crops"
                else {}
            ),
        }
        for split in splits
    ]
    if rows:
        st.dataframe(rows, hide_index=True)
    if summary.faces_pct is not None:
        st.caption(f"Faces found in {summary.faces_pct:g}% of the frames looked at.")
    for note in summary.notes:
        st.caption(note[0].upper() + note[1:] + ".")
    for problem in summary.problems:
        st.error(f"This folder cannot be used for training: {problem}.")


@st.fragment(run_every=2)
def _extraction_progress(out: Path) -> None:
    progress = extraction_progress(out)
    if progress.error:
        st.error(f"Finding the faces stopped: {progress.error}. Press the button to try again.")
    elif progress.finished:
        st.rerun()  # the whole page: the form now trains on the extracted faces
    elif progress.running:
        st.progress(
            progress.done / max(progress.total, 1),
            text=f"Finding faces: {progress.done} of {progress.total} clips or images done",
        )


def _data_section(settings: Settings) -> DatasetSummary | None:
    choices = train_state.data_folder_choices(str(settings.ensure_data_root()), str(settings.cache_dir))
    root = str(settings.data_root.resolve())
    pick_col, type_col = st.columns(2)
    pick_col.selectbox(
        "Labelled data (a folder with real/ and fake/ inside)",
        choices,
        index=None,
        key=train_state.TRAIN_DATA_KEY,
        placeholder="Choose a folder",
        format_func=lambda p: p.removeprefix(root).lstrip("/") or p,
    )
    type_col.text_input(
        "… or type its path", key=train_state.TRAIN_DATA_PATH_KEY, placeholder=f"a folder inside {settings.data_root}"
    )
    folder, summary, error = chosen_data(settings)
    if error:
        st.error(error[0].upper() + error[1:] + ".")
        return None
    if summary is None:
        return None
    if folder is not None and folder.parent == datasets_dir(settings):
        st.caption("Training uses the faces found in these clips.")
    _summary_table(summary)
    if summary.kind == "raw" and not summary.problems:
        out = extraction_target(folder, settings)
        st.info("These are clips or photos: the faces must be found in them first (a few seconds per clip).")
        if st.button(
            "Find the faces",
            key=train_state.TRAIN_EXTRACT_KEY,
            icon=":material/face:",
            disabled=not admin.is_admin(),  # it starts a process on the server (the gate's words are below)
        ):
            try:
                if not admin.is_admin():  # checked again: a click may come from a stale page
                    raise DFIError("only an admin of this server can find faces here")
                start_extraction(folder, settings)
            except DFIError as err:
                st.error(err.message)
        if extraction_progress(out).running or extraction_progress(out).error:
            _extraction_progress(out)
    return summary


def _runtime_section(settings: Settings) -> None:
    # Only the cluster the server was started with: a typed address would let any visitor make the
    # server send requests anywhere, and ship there the project and every DFI_* setting.
    address = settings.ray_address
    if not address:
        backend = "local"
        st.caption(
            "Training runs on this computer. To offer a Ray cluster here, whoever runs this server "
            "starts it with DFI_RAY_ADDRESS set to the cluster's dashboard address."
        )
    else:
        backend = st.radio(
            "Where to train",
            list(RUNTIMES),
            format_func=RUNTIMES.get,
            key=train_state.TRAIN_RUNTIME_KEY,
            horizontal=True,
        )
    if backend == "ray":
        st.caption(f"The Ray cluster this server is set up with: {address} (DFI_RAY_ADDRESS).")
        st.checkbox(
            "Install the app's requirements on the cluster",
            key=train_state.TRAIN_RAY_PIP_KEY,
            help="Only for a cluster without TensorFlow and the app's other libraries: the first "
            "run then takes minutes longer while they install.",
        )
    try:
        devices = train_state.runtime_devices(backend, address if backend == "ray" else "")
    except DFIError as err:
        st.error(err.message[0].upper() + err.message[1:] + ".")
        return
    sentences = [f"{devices.where}: {devices.summary()}", *devices.notes]
    st.caption(" ".join(f"{s[:1].upper()}{s[1:]}." for s in sentences))
    if devices.gpus:
        st.number_input(
            "GPUs for this run",
            1 if backend == "local" else 0,
            len(devices.gpus),
            value=1,
            key=train_state.TRAIN_GPUS_KEY,
        )
    if backend == "local":
        st.checkbox(
            "Start at once, alongside runs already going",
            key=train_state.TRAIN_PARALLEL_KEY,
            help="By default a run waits until the one before it is done (one per GPU), so they do "
            "not slow each other down.",
        )


def _start() -> None:
    """Start button callback: submit the form; the outcome is shown at the top of the page."""
    settings = get_settings()
    folder, summary, error = chosen_data(settings)
    state = st.session_state
    try:
        if not admin.is_admin():  # the button is disabled for visitors; checked again here
            raise DFIError("only an admin of this server can start training")
        if folder is None or summary is None or not summary.ready:
            raise DFIError(error or "choose a data folder with face crops first")
        form = actions.TrainForm(
            arch=state[train_state.TRAIN_ARCH_KEY],
            init=state[train_state.TRAIN_INIT_KEY],
            tag=state[train_state.TRAIN_TAG_KEY],
            data=str(folder),
            epochs=state[train_state.TRAIN_EPOCHS_KEY],
            batch=state[train_state.TRAIN_BATCH_KEY],
            lr=state[train_state.TRAIN_LR_KEY],
            augment=state[train_state.TRAIN_AUGMENT_KEY],
            # Ray only while the server has a cluster (the choice may predate a restart without one).
            backend=state.get(train_state.TRAIN_RUNTIME_KEY, "local") if settings.ray_address else "local",
            parallel=bool(state.get(train_state.TRAIN_PARALLEL_KEY)),
            gpus=state.get(train_state.TRAIN_GPUS_KEY),
            install_requirements=bool(state.get(train_state.TRAIN_RAY_PIP_KEY)),
        )
        run = actions.start_run(form, settings)
    except DFIError as err:
        train_state.flash("error", f"The run was not started: {err.message}.")
        return
    state[train_state.TRAIN_RUN_KEY] = run.run_id
    state[train_state.TRAIN_TAG_KEY] = actions.default_tag()
    train_state.flash("success", f"Started {run.card_id}: follow it below.")


def render(settings: Settings) -> None:
    """Draw the form."""
    state = st.session_state
    state.setdefault(train_state.TRAIN_ARCH_KEY, "meso4")
    if train_state.TRAIN_EPOCHS_KEY not in state:
        _apply_defaults()
    state.setdefault(train_state.TRAIN_TAG_KEY, actions.default_tag())
    arch_col, init_col, tag_col = st.columns(3)
    arch = arch_col.selectbox(
        "Model to train",
        list(models.ARCHITECTURES),
        key=train_state.TRAIN_ARCH_KEY,
        format_func=actions.ARCH_NAMES.get,
        on_change=_apply_defaults,
    )
    inits = actions.init_choices(arch, settings)
    init_col.selectbox("Start from", list(inits), format_func=inits.get, key=train_state.TRAIN_INIT_KEY)
    tag_col.text_input(
        "Name of the new model",
        key=train_state.TRAIN_TAG_KEY,
        max_chars=40,
        help=f"Letters a-z, digits, - and _. The model will be called {arch}.<name>.",
    )
    summary = _data_section(settings)
    with st.expander("Training settings (the usual ones for this model are filled in)"):
        cols = st.columns(4)
        cols[0].number_input("Epochs (passes over the data)", 1, 500, key=train_state.TRAIN_EPOCHS_KEY)
        cols[1].number_input("Batch size", 1, 1024, key=train_state.TRAIN_BATCH_KEY)
        cols[2].number_input("Learning rate", 1e-6, 1.0, key=train_state.TRAIN_LR_KEY, format="%.0e", step=1e-4)
        cols[3].checkbox("Vary the training faces (flip, blur, JPEG)", value=True, key=train_state.TRAIN_AUGMENT_KEY)
    _runtime_section(settings)
    allowed = admin.require("start training")
    st.button(
        "Start training",
        key=train_state.TRAIN_START_KEY,
        type="primary",
        icon=":material/play_arrow:",
        on_click=_start,
        disabled=not allowed or summary is None or not summary.ready,
    )
