"""The Scan page's results: a sortable, filterable table of a scan, and the picked clip's report.

The table is the scan's own rows (RESULTS/results.jsonl, the journal the engine appends to), so
it is complete up to the last clip finished, even while the scan runs. A click on a row opens that
clip's stored report with the Analyze page's renderers (summary, verdict cards, timeline); the face
crops are not stored, so showing them analyses the clip again on request.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import streamlit as st

from core.scan.reports import clip_report_from_dict
from core.scan.results import ResultsFolder, p_fake_column, verdict_column
from views.common.verdicts import render_cards, render_summary
from views.figures.timeline import timeline_figure
from views.scan import state as scan_state

log = logging.getLogger(__name__)
STATUS_WORDS = {"ok": "analysed", "no_face": "no face found", "error": "failed"}


def scan_table(rows: list[dict], model_ids: list[str]) -> pd.DataFrame:
    """One row per clip: path, result, each model's p_fake and verdict, seconds, error, sha256."""
    table = pd.DataFrame(
        {
            "Clip": [r["path"] for r in rows],
            "Result": [STATUS_WORDS.get(r["status"], r["status"]) for r in rows],
            **{
                col: [r.get(src) for r in rows]
                for m in model_ids
                for col, src in ((p_fake_column(m), p_fake_column(m)), (verdict_column(m), verdict_column(m)))
            },
            "Seconds": [r.get("seconds") for r in rows],
            "Error": [r.get("error") or "" for r in rows],
            "sha256": [r["sha256"] for r in rows],
        }
    )
    for m in model_ids:
        table[p_fake_column(m)] = pd.to_numeric(table[p_fake_column(m)]).astype("float64")
    return table


def filtered(table: pd.DataFrame, results: list[str], verdicts: list[str], text: str, model_ids: list[str]):
    """The rows whose result is among ``results``, with a verdict among ``verdicts`` (any model), naming ``text``."""
    keep = table["Result"].isin(results) if results else pd.Series(True, index=table.index)
    if verdicts:
        keep &= pd.concat([table[verdict_column(m)].isin(verdicts) for m in model_ids], axis=1).any(axis=1)
    if text.strip():
        keep &= table["Clip"].str.contains(text.strip(), case=False, regex=False)
    return table[keep].reset_index(drop=True)


def render_results(out: Path, model_ids: list[str]) -> None:
    """The table of the scan in ``out`` with its filters, then the report of the row picked in it."""
    folder = ResultsFolder(out)
    rows = folder.rows()
    if not rows:
        st.info("No clip has finished yet.", icon=":material/hourglass_empty:")
        return
    table = scan_table(rows, model_ids)
    status_col, verdict_col, text_col = st.columns([2, 2, 3])
    results = status_col.multiselect(
        "Result", list(STATUS_WORDS.values()), key=scan_state.SCAN_STATUS_FILTER_KEY, placeholder="any"
    )
    verdicts = verdict_col.multiselect(
        "Verdict (any detector)",
        ["FAKE", "UNCERTAIN", "REAL", "NO_FACE", "UNAVAILABLE"],
        key=scan_state.SCAN_VERDICT_FILTER_KEY,
        placeholder="any",
    )
    text = text_col.text_input("Clip name contains", key=scan_state.SCAN_TEXT_FILTER_KEY)
    shown = filtered(table, results, verdicts, text, model_ids)
    st.caption(f"{len(shown)} of {len(table)} clips. Click a column name to sort; select a row to open its report.")
    scan_state.show_rows(out, list(zip(shown["Clip"], shown["sha256"])))
    st.dataframe(
        shown.drop(columns=["sha256"]),
        key=scan_state.SCAN_TABLE_KEY,
        on_select=scan_state.pick_from_table,
        selection_mode="single-row",
        hide_index=True,
        column_config={p_fake_column(m): st.column_config.NumberColumn(format="%.3f") for m in model_ids},
    )
    csv, parquet = out / "results.csv", out / "results.parquet"
    left, right = st.columns(2)
    if csv.is_file():
        left.download_button("Results (CSV)", csv.read_bytes(), file_name="results.csv", mime="text/csv")
    if parquet.is_file():
        right.download_button("Results (Parquet)", parquet.read_bytes(), file_name="results.parquet")
    picked = scan_state.picked(out)
    row = next((r for r in rows if picked and (r["path"], r["sha256"]) == picked), None)
    if row is not None:
        render_clip(folder, row)


def render_clip(folder: ResultsFolder, row: dict) -> None:
    """The stored report of one scanned clip (a results row), drawn with the Analyze page's renderers."""
    st.subheader(f"Clip: {row['path']}")
    if row["status"] == "error":
        st.error(f"This clip could not be analysed: {row['error']}", icon=":material/error:")
        return
    data = folder.report(row["sha256"])
    if data is None:
        st.warning("Its report is missing from the results folder.", icon=":material/help:")
        return
    try:
        report = clip_report_from_dict(data)
    except (KeyError, TypeError, ValueError):
        log.exception("the stored report %s is not a dfi.report/1", folder.report_path(row["sha256"]))
        st.error("Its stored report cannot be read; the details are in the server log.", icon=":material/error:")
        return
    render_summary(report)
    render_cards(report)
    if report.status == "ok" and any(m.frames for m in report.models):
        st.plotly_chart(timeline_figure(report), key="scan_timeline")
    st.caption(
        "The face crops are not kept in the results; the Analyze page shows them for this clip "
        f"(sha256 {row['sha256'][:12]}…)."
    )
