"""One clip's full report under the Compare page, drawn with the Analyze page's own renderers."""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from core.engine.report_queries import face_at_point
from core.errors import DFIError
from views.analyze.gallery import render_gallery, render_selected_crop
from views.common.verdicts import render_cards, render_summary
from views.compare import state as compare_state
from views.figures.timeline import timeline_figure

log = logging.getLogger(__name__)


def render_clip(result: dict, key: tuple, clip_path: str) -> None:
    """Analyse ``clip_path`` (a clip of ``result``) with the evaluation's models and frames; show it."""
    row = next(c for c in result["clips"] if c["path"] == clip_path)
    truth = "FAKE" if row["label"] == 1 else "REAL"
    st.subheader(f"Clip: {clip_path}")
    st.caption(f"The truth: **{truth}**. The same detectors and {result['frames']} frames as the comparison.")
    clip = Path(result["data"]) / clip_path
    try:
        with st.spinner(f"Analysing {clip.name}…"):
            report = compare_state.clip_report(key, clip, lambda stage, fraction: None)
    except DFIError as err:
        st.error(f"Could not analyse {clip_path}: {err.message}", icon=":material/error:")
        return
    except Exception:  # noqa: BLE001 - never a traceback on the page
        log.exception("analysis of %s from the Compare page failed", clip)
        st.error(f"Could not analyse {clip_path}; the details are in the server log.", icon=":material/error:")
        return
    render_summary(report)
    render_cards(report)
    if report.status != "ok" or not report.crops or not any(m.frames for m in report.models):
        return
    event = st.plotly_chart(timeline_figure(report), key="compare_timeline", on_select="rerun", selection_mode="points")
    points = event.get("selection", {}).get("points", []) if isinstance(event, dict) else []
    crop = next((c for c in (face_at_point(report, p) for p in points) if c is not None), None)
    if crop is not None:
        render_selected_crop(report, crop)
    render_gallery(report)
