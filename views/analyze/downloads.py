"""The downloads row of the Analyze page: report JSON, per-frame CSV, annotated video."""

from __future__ import annotations

import logging

import streamlit as st

from core.engine.report import csv_text, report_to_json
from core.errors import DFIError
from core.types import ClipReport
from views.analyze import state as analyze_state

log = logging.getLogger(__name__)


def render_downloads(report: ClipReport, source: analyze_state.ClipSource, key: tuple) -> None:
    """Three downloads; the annotated video is made on request (it re-reads the clip)."""
    st.subheader("Downloads")
    stem = report.clip.name.rsplit(".", 1)[0]
    json_col, csv_col, video_col = st.columns(3)
    # on_click="ignore": a download needs no rerun of the page.
    json_col.download_button(
        "Report (JSON)",
        report_to_json(report),
        f"{stem}.report.json",
        "application/json",
        key="download_json",
        on_click="ignore",
        icon=":material/download:",
    )
    csv_col.download_button(
        "Scores per frame (CSV)",
        csv_text(report),
        f"{stem}.frames.csv",
        "text/csv",
        key="download_csv",
        on_click="ignore",
        icon=":material/download:",
    )
    if report.status != "ok":
        return
    wanted = video_col.button(
        "Make annotated video",
        key=analyze_state.ANNOTATE_BUTTON_KEY,
        icon=":material/movie_edit:",
        help="The sampled frames with each face boxed and labelled with the scores.",
    )
    if not (wanted or analyze_state.has_annotated(key)):
        return
    try:
        with video_col, st.spinner("Drawing the boxes…"):
            path = analyze_state.annotated_video(source, key, report)
    except DFIError as err:
        video_col.error(f"Could not make the annotated video: {err.message}")
        return
    except Exception:  # noqa: BLE001 - never a traceback on the page
        log.exception("annotated video for %s failed", report.clip.name)
        video_col.error("Could not make the annotated video; the details are in the server log.")
        return
    video_col.download_button(
        "Annotated video (MP4)",
        # Read from its temp file only when clicked (and in a thread of its own), never held here.
        path.read_bytes,
        f"{stem}.annotated.mp4",
        "video/mp4",
        key="download_video",
        on_click="ignore",
        icon=":material/download:",
    )
