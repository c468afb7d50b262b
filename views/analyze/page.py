"""Analyze page: upload a clip (or try the sample), see both verdicts, the timeline and the faces.

Thin on purpose: read the widgets, get one report (views/common/state.py: cache or core.engine.analysis.analyze),
render it. Every failure becomes a plain message; nothing reaches the page as a traceback.
"""

from __future__ import annotations

import logging
import time

import streamlit as st

import models
from core.engine.report_queries import face_at_point
from core.errors import DFIError, InvalidClipError
from core.settings import get_settings
from core.types import ClipReport, Verdict
from views.analyze import state as analyze_state
from views.analyze.downloads import render_downloads
from views.analyze.gallery import render_gallery, render_selected_crop
from views.common import loaded
from views.common.verdicts import render_cards, render_summary
from views.figures.timeline import timeline_figure

log = logging.getLogger(__name__)

FRAME_CHOICES = (8, 16, 24, 32, 48, 64, 96, 128)
STAGE_WORDS = {"reading": "Reading the video", "faces": "Finding faces", "done": "Done"}


def _controls(settings) -> tuple[object, int, list[str]]:
    """The clip inputs and options; returns (uploaded file, frames, model ids)."""
    upload_col, sample_col = st.columns([3, 1], vertical_alignment="center")
    uploaded = upload_col.file_uploader(
        "Drop a short video with a face in it",
        type=list(analyze_state.UPLOAD_TYPES),
        key=analyze_state.UPLOAD_KEY,
        on_change=analyze_state.choose_upload,
        max_upload_size=settings.max_upload_mb,
        help=f"mp4, mov, m4v, avi, mkv or webm, up to {settings.max_upload_mb} MB. Nothing is kept after the analysis.",
    )
    sample_col.button(
        "Try a sample clip",
        key=analyze_state.SAMPLE_BUTTON_KEY,
        on_click=analyze_state.choose_sample,
        icon=":material/movie:",
        help="A 5 s zoom over NASA's portrait of an astronaut (a real photo).",
    )
    cards = {card.id: card for card in models.list_models(settings)}
    with st.expander("Options: how many frames, which detectors"):
        frames = st.select_slider(
            "Frames to look at",
            [c for c in FRAME_CHOICES if c <= settings.max_frames],
            value=settings.default_frames,
            key=analyze_state.FRAMES_KEY,
            help="Evenly spaced through the clip. More frames give a steadier verdict but take longer.",
        )
        model_ids = st.multiselect(
            "Detectors to compare",
            list(cards),
            default=[i for i in models.default_model_ids(settings) if i in cards],
            format_func=lambda i: f"{cards[i].display_name} ({i})",
            key=analyze_state.MODELS_KEY,
        )
    return uploaded, int(frames), model_ids


def _get_report(source: analyze_state.ClipSource, key: tuple) -> tuple[ClipReport, str]:
    """The report and a note on how it was obtained: this session, the server cache, or analysed."""
    held = analyze_state.session_report(key)
    if held is not None:
        return held
    started = time.perf_counter()
    report = analyze_state.server_report(key, source)
    if report is not None:
        note = f"reused from an earlier analysis of the same clip in {time.perf_counter() - started:.2f} s"
    else:
        report = _analyse(source, key)
        note = f"analysed in {time.perf_counter() - started:.1f} s"
    analyze_state.remember(key, report, note)
    return report, note


def _analyse(source: analyze_state.ClipSource, key: tuple) -> ClipReport:
    """Run the analysis with a live progress display per stage."""
    names = {card.id: card.display_name for card in models.list_models()}
    with st.status(f"Analysing {source.name}…", expanded=True) as status:
        if not loaded.preload_done():
            # The server started loading them at start-up; say so rather than seem stuck.
            bar = st.progress(0.0, text=f"Loading detectors… (started {loaded.preload_elapsed():.0f} s ago)")
            loaded.wait_for_preload()
        else:
            bar = st.progress(0.0, text="Getting the detectors ready (only slow the first time)")
        loaded.warm_up(key[2])

        def progress(stage: str, fraction: float) -> None:
            model = stage.split(":", 1)[1] if stage.startswith("model:") else None
            words = f"Running {names.get(model, model)}" if model else STAGE_WORDS.get(stage, stage)
            bar.progress(min(max(fraction, 0.0), 1.0), text=words + "…")

        try:
            report = analyze_state.run_analysis(source, key, progress)
        except Exception:
            status.update(label=f"Could not analyse {source.name}", state="error", expanded=False)
            raise
        status.update(label=f"Analysed {source.name}", state="complete", expanded=False)
    return report


def _results(report: ClipReport, source: analyze_state.ClipSource, key: tuple, note: str) -> None:
    clip = report.clip
    st.caption(
        f"**{clip.name}** · {clip.width}x{clip.height}, {clip.duration_s:.1f} s · "
        f"{len(report.sampling.frame_indices)} frames looked at · {note}"
    )
    render_summary(report)
    render_cards(report)
    missing = [m for m in report.models if m.verdict is Verdict.UNAVAILABLE]
    judged = [m.display_name for m in report.models if m.p_fake is not None]
    if missing and judged:
        st.info(
            f"{len(missing)} of {len(report.models)} detectors could not run here, so the verdict "
            f"rests on {', '.join(judged)} alone. The card of each missing one says why.",
            icon=":material/info:",
        )
    if report.status == "ok" and report.crops:
        st.subheader("Frame by frame")
        st.caption(
            "Each dot is one sampled frame: how likely each detector thinks the face is fake at "
            "that moment. Gaps are frames where no face was found. Click a dot to see that face "
            "and where each detector looked."
        )
        if judged:
            event = st.plotly_chart(
                timeline_figure(report), key=analyze_state.TIMELINE_KEY, on_select="rerun", selection_mode="points"
            )
            points = event.get("selection", {}).get("points", []) if isinstance(event, dict) else []
            crop = next((c for c in (face_at_point(report, p) for p in points) if c is not None), None)
            if crop is not None:
                render_selected_crop(report, crop, key)
        else:  # an empty chart would look like a broken page
            st.info("No detector could score these frames, so there is no timeline to draw.", icon=":material/info:")
        st.subheader("The faces the detectors looked at")
        render_gallery(report, key)
    render_downloads(report, source, key)


@st.fragment(run_every=1.0)
def _loading_note() -> None:
    """ "Loading detectors…" while the server's start-up loading runs; the page redraws when done.

    A fragment polling once a second, so the page is usable meanwhile (nothing here blocks).
    """
    if loaded.preload_done():
        st.rerun(scope="app")
    st.caption(f":material/hourglass_top: Loading detectors… ({loaded.preload_elapsed():.0f} s so far)")


def _page() -> None:
    """Inputs, then either a prompt, or the report of the chosen clip."""
    st.title("Is this face real or a deepfake?")
    st.write(
        "Give it a short video of a face. Two very different detectors each check the face frame "
        "by frame and say whether it looks **real** or **manipulated**, and how sure they are."
    )
    uploaded, frames, model_ids = _controls(get_settings())
    source = analyze_state.chosen_source(uploaded)
    if source is None:
        st.info("Upload a clip above, or press **Try a sample clip** to see how it works.", icon=":material/upload:")
        if not loaded.preload_done():
            _loading_note()
    elif not model_ids:
        st.warning("Pick at least one detector under **Options** to analyse the clip.")
    else:
        key = analyze_state.request_key(source, frames, model_ids)
        report, note = _get_report(source, key)
        _results(report, source, key, note)


try:
    _page()
except InvalidClipError as err:
    st.error(
        f"{err.message.rstrip('. ')}. Try another file: a short mp4, mov or webm video where a face is visible.",
        icon=":material/error:",
    )
except DFIError as err:
    st.error(err.message, icon=":material/error:")
except Exception:  # noqa: BLE001 - the page must never show a traceback
    log.exception("the Analyze page failed")
    st.error(
        "Something went wrong. Please try another clip; if it keeps happening, the details are in the server log.",
        icon=":material/error:",
    )
