"""The results part of the Compare page: metrics side by side, charts, per-clip table, downloads."""

from __future__ import annotations

import json
from functools import partial

import pandas as pd
import streamlit as st

from views.compare import state as compare_state
from views.compare.clip import render_clip
from views.figures.compare_charts import calibration_figure, roc_figure, scatter_figure
from views.figures.compare_tables import clip_table, clips_csv, disagreements, metrics_table


def render_results(result: dict, key: tuple, note: str) -> None:
    """Everything the comparison shows, then the report of the clip picked in the scatter or table."""
    counts = result["counts"]
    seconds = result["mean_seconds_per_clip"]
    st.caption(
        f"{counts['clips']} clips ({counts['real']} real, {counts['fake']} fake): {counts['analysed']} "
        f"analysed, {counts['no_face']} without a face, {counts['errors']} failed · "
        f"{result['frames']} frames per clip · "
        + (f"{seconds:.1f} s per clip for the whole pipeline · " if seconds is not None else "")
        + note
    )
    st.subheader("Side by side")
    st.table(pd.DataFrame(metrics_table(result)).set_index("Measure"))
    for model in result["models"]:
        if not model["available"]:
            st.warning(f"**{model['id']}** could not run: {model['message']}", icon=":material/block:")
    if result["skipped"]:
        lines = "\n".join(f"- `{s['path']}`: {s['reason']}" for s in result["skipped"])
        st.warning(
            f"{len(result['skipped'])} clips were not scored, so the measures above leave them out:\n" + lines,
            icon=":material/info:",
        )
    roc_col, cal_col = st.columns(2)
    with roc_col:
        st.subheader("ROC curves")
        st.caption("Higher and further left is better: more fakes caught for fewer real clips wrongly flagged.")
        st.plotly_chart(roc_figure(result), key="compare_roc")
    with cal_col:
        st.subheader("Can its percentages be taken literally?")
        st.caption(
            "Clips grouped by score: a trustworthy detector sits on the dotted line (of the clips it "
            "gives 80%, 80% really are fake)."
        )
        st.plotly_chart(calibration_figure(result), key="compare_calibration")
    _render_scatter(result, key)
    st.subheader("Every clip")
    st.caption("Click a column name to sort; select a row to see that clip's full report below.")
    st.dataframe(
        clip_table(result),
        key=compare_state.COMPARE_TABLE_KEY,
        on_select=partial(compare_state.pick_from_table, key),
        selection_mode="single-row",
        hide_index=True,
        column_config={f"{m['id']} p_fake": st.column_config.NumberColumn(format="%.3f") for m in result["models"]},
    )
    json_col, csv_col = st.columns(2)
    json_col.download_button(
        "Comparison (JSON)",
        json.dumps(result, indent=2),
        "comparison.json",
        "application/json",
        key="compare_download_json",
        on_click="ignore",
        icon=":material/download:",
    )
    csv_col.download_button(
        "Scores per clip (CSV)",
        clips_csv(result),
        "comparison.csv",
        "text/csv",
        key="compare_download_csv",
        on_click="ignore",
        icon=":material/download:",
    )
    picked = compare_state.selected_clip(key)
    if picked is not None:
        render_clip(result, key, picked)


def _render_scatter(result: dict, key: tuple) -> None:
    """Model A against model B, one dot per clip; a click opens that clip's report."""
    ids = [m["id"] for m in result["models"] if m["clips_scored"]]
    st.subheader("Where two detectors disagree")
    if len(ids) < 2:
        st.info("At least two detectors must have scored clips to set them against each other.", icon=":material/info:")
        return
    a_col, b_col = st.columns(2)
    model_a = a_col.selectbox("Detector across", ids, index=0, key=compare_state.COMPARE_A_KEY)
    model_b = b_col.selectbox("Detector up", ids, index=1, key=compare_state.COMPARE_B_KEY)
    split = disagreements(result, model_a, model_b)
    st.caption(
        f"One dot per clip, coloured by the truth. The dashed lines are each detector's decision line: "
        f"dots in the top-left and bottom-right corners are clips they disagree on ({split} here) — "
        "that is where a person should look. Click a dot to see that clip's report."
    )
    st.plotly_chart(
        scatter_figure(result, model_a, model_b),
        key=compare_state.COMPARE_SCATTER_KEY,
        on_select=partial(compare_state.pick_from_scatter, key),
        selection_mode="points",
    )
