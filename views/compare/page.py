"""Compare page: run two or more detectors over a labelled folder and set their results side by side.

Thin on purpose: read the widgets, get one evaluation (views/compare/state.py: this session, the server cache,
or the scan engine's core.scan.evaluate with a live progress bar and a Stop button, here or on the configured
Ray cluster), render it (views/compare/results.py).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import streamlit as st

import models
from core.errors import DFIError
from core.evaluation.compare import FolderError, labelled_clips, labelled_folders, resolve_inside
from core.settings import SAMPLES_DIR, get_settings
from views.compare import state as compare_state
from views.compare.results import render_results

log = logging.getLogger(__name__)

FRAME_CHOICES = (8, 16, 24, 32, 48, 64)
OTHER_FOLDER = "Another folder inside the data folder…"
HERE = "This computer"


def folder_choices(settings) -> dict[str, Path]:
    """Labelled folders offered in the picker: under the data root, then the app's own samples."""
    root = settings.ensure_data_root()  # a new user's folder exists (empty) from the first visit
    choices = {}
    for folder in labelled_folders(root):
        rel = folder.relative_to(root).as_posix()
        choices["the data folder itself" if rel == "." else rel] = folder
    for folder in labelled_folders(SAMPLES_DIR):
        choices[f"sample set: {folder.relative_to(SAMPLES_DIR.parent).as_posix()}"] = folder
    return choices


def _controls(settings) -> tuple[list[str], Path | None, int]:
    """The model, folder and frames pickers; returns (model ids, folder or None, frames)."""
    cards = {card.id: card for card in models.list_models(settings)}
    model_ids = st.multiselect(
        "Detectors to compare (two or more)",
        list(cards),
        key=compare_state.COMPARE_MODELS_KEY,
        default=[i for i in models.default_model_ids(settings) if i in cards],
        format_func=lambda i: f"{cards[i].display_name} ({i})",
    )
    choices = folder_choices(settings)
    folder_col, frames_col = st.columns([3, 1])
    picked = folder_col.selectbox(
        "Labelled clips",
        [*choices, OTHER_FOLDER],
        key=compare_state.COMPARE_FOLDER_KEY,
        help=f"A folder with real/ and fake/ sub-folders of video clips, inside {settings.data_root}.",
    )
    usual = max([c for c in FRAME_CHOICES if c <= settings.default_frames] or [FRAME_CHOICES[0]])
    frames = frames_col.select_slider(
        "Frames per clip",
        FRAME_CHOICES,
        value=usual,
        key=compare_state.COMPARE_FRAMES_KEY,
        help="Sampled evenly through each clip, as on the Analyze page.",
    )
    if picked != OTHER_FOLDER:
        return model_ids, choices[picked], int(frames)
    if not choices:
        st.caption(f"No folder with real/ and fake/ clips was found in the data folder ({settings.data_root}).")
    typed = st.text_input(
        "Folder (a path inside the data folder)", key=compare_state.COMPARE_FOLDER_TEXT_KEY, placeholder="e.g. clips"
    )
    if not typed.strip():
        return model_ids, None, int(frames)
    return model_ids, resolve_inside(settings.data_root, typed), int(frames)


def _where(settings) -> str | None:
    """The Ray address to compare on, or None for this computer (a choice only when one is configured).

    Only ``DFI_RAY_ADDRESS`` is offered: a page never sends work to an address someone typed.
    """
    if not settings.ray_address:
        return None
    cluster = f"Ray cluster ({settings.ray_address})"
    picked = st.radio(
        "Where to analyse the clips",
        [HERE, cluster],
        key=compare_state.COMPARE_WHERE_KEY,
        horizontal=True,
        help="The cluster must reach the labelled folder and the cache folder at the same paths as this computer.",
    )
    return settings.ray_address if picked == cluster else None


def _evaluate(key: tuple, clips, ray_address: str | None = None) -> dict:
    """Run the evaluation with a live progress bar and a Stop button; returns the result."""
    names = {card.id: card.display_name for card in models.list_models()}
    where = " on the Ray cluster" if ray_address else ""
    with st.status(f"Comparing {len(key[2])} detectors on {len(clips)} clips{where}…", expanded=True) as status:
        st.button(
            "Stop",
            key=compare_state.COMPARE_STOP_KEY,
            icon=":material/stop_circle:",
            help="Stops after the clip being analysed; nothing is kept.",
        )
        bar = st.progress(0.0, text="Getting the detectors ready: " + ", ".join(names.get(i, i) for i in key[2]))
        started = time.perf_counter()

        def on_clip(row: dict, done: int) -> None:
            left = (time.perf_counter() - started) / done * (len(clips) - done)
            bar.progress(
                done / len(clips), text=f"{done} of {len(clips)} clips done ({row['path']}); about {left:.0f} s left"
            )

        result = compare_state.run_comparison(key, clips, on_clip, ray_address)
        status.update(
            label=f"Compared on {len(clips)} clips in {time.perf_counter() - started:.0f} s",
            state="complete",
            expanded=False,
        )
    return result


def _page() -> None:
    st.title("Compare detectors on labelled clips")
    st.write(
        "Run several detectors over a folder of clips whose truth is known (**real/** and **fake/** "
        "folders) and see which one gets it right more often, how sure each is, and where they disagree."
    )
    settings = get_settings()
    model_ids, folder, frames = _controls(settings)
    stopped = compare_state.stopped_run()
    if stopped:
        st.warning(
            f"The comparison was stopped after {stopped['done']} of {stopped['total']} clips; "
            "nothing was kept. Press **Compare** to run it again.",
            icon=":material/stop_circle:",
        )
    if folder is None:
        st.info("Type the name of a folder inside the data folder.", icon=":material/folder:")
        return
    if len(model_ids) < 2:
        st.info("Pick at least two detectors to compare.", icon=":material/compare_arrows:")
        return
    clips = labelled_clips(folder)
    key = compare_state.compare_request_key(folder, clips, model_ids, frames, settings)
    result, note = compare_state.held_comparison(key) or (None, "")
    if result is None and (result := compare_state.cached_evaluation(key)) is not None:
        note = "reused from an earlier comparison of the same clips and detectors"
    if result is None:
        n_real = sum(label == 0 for _, label in clips)
        st.write(f"**{len(clips)} clips** ({n_real} real, {len(clips) - n_real} fake) in `{folder}`.")
        ray_address = _where(settings)
        if not st.button("Compare", key=compare_state.COMPARE_RUN_KEY, type="primary", icon=":material/play_arrow:"):
            return
        result, note = _evaluate(key, clips, ray_address), "just compared"
    compare_state.remember_comparison(key, result, note)
    render_results(result, key, note)


try:
    _page()
except FolderError as err:
    st.error(f"{err.message[0].upper()}{err.message[1:]}.", icon=":material/folder_off:")
except DFIError as err:
    st.error(err.message, icon=":material/error:")
except Exception:  # noqa: BLE001 - the page must never show a traceback
    log.exception("the Compare page failed")
    st.error("Something went wrong while comparing. The details are in the server log.", icon=":material/error:")
