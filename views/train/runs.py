"""The Train page's runs panel: the runs table and, for the chosen run, its live curves, progress,
last log lines, Cancel and "Use this model". Redrawn every few seconds by itself (a fragment), and
each redraw polls the runs, which also starts the next queued run when a slot frees up."""

from __future__ import annotations

import streamlit as st

from core.errors import DFIError
from core.files import read_json
from core.settings import Settings
from core.training.install_run import installed_card, run_card
from core.training.run_folder import JOB_FILE, RunInfo, read_metrics
from views.common import admin
from views.figures.train_charts import training_curves_figure
from views.train import actions
from views.train import state as train_state

REFRESH_S = 3


def _use_section(run: RunInfo, settings: Settings) -> None:
    try:
        card = run_card(run.dir)
    except DFIError as err:
        st.error(f"This run's model cannot be used: {err.message}.")
        return
    installed = installed_card(card.id, settings)
    if installed is not None and installed.weights.sha256 == card.weights.sha256:
        st.success(f"**{card.display_name}** is installed: choose it on the Analyze page.", icon=":material/check:")
        return
    if not admin.is_admin():
        st.caption(f"{card.display_name} is ready; an admin of this server can install it for everyone.")
        return
    replace = False
    if installed is not None:
        replace = st.checkbox(f"Replace the installed model named {card.id}", key=train_state.TRAIN_REPLACE_KEY)
    if st.button("Use this model", key=train_state.TRAIN_USE_KEY, type="primary", icon=":material/add_task:"):
        try:
            actions.install_run(run, settings, replace=replace)
        except DFIError as err:
            st.error(f"The model was not installed: {err.message}.")
            return
        train_state.flash("success", f"{card.display_name} is installed: the Analyze and Compare pages now offer it.")
        st.rerun()  # the whole app: the sidebar lists the new detector


def _details(run: RunInfo, settings: Settings) -> None:
    words = actions.progress_words(run)
    {"failed": st.error, "cancelled": st.warning}.get(run.state, st.write)(words)
    unreachable = read_json(run.dir / JOB_FILE).get("unreachable")
    if unreachable and not run.finished:
        st.warning(f"No news from the cluster: {unreachable}.")
    if run.state == "running" and run.epoch and run.epochs:
        st.progress(min(run.epoch / run.epochs, 1.0))
    rows = read_metrics(run.dir)
    if rows:
        st.plotly_chart(training_curves_figure(rows), key="train_curves")
    elif not run.finished:
        st.caption("The curves appear after the first epoch.")
    with st.expander("Log (last lines)", expanded=run.state == "failed"):
        st.code("\n".join(actions.log_lines(run)) or "(nothing written yet)", language=None)
    if not run.finished and not admin.is_admin():
        st.caption("Only an admin of this server can cancel a run.")
    elif not run.finished and st.button("Cancel this run", key=train_state.TRAIN_CANCEL_KEY, icon=":material/stop:"):
        try:
            actions.cancel_run(run, settings)
            train_state.flash("info", f"Cancelling {run.card_id}.")
        except DFIError as err:
            train_state.flash("error", f"The run could not be cancelled: {err.message}.")
        st.rerun()
    if run.state == "succeeded":
        _use_section(run, settings)


@st.fragment(run_every=REFRESH_S)
def render(settings: Settings) -> None:
    """The runs table and the chosen run; redraws itself every few seconds."""
    runs = actions.poll_runs(settings)
    if not runs:
        st.info("No training runs yet. Start one above; it appears here.")
        return
    st.dataframe(actions.table_rows(runs), hide_index=True, column_config={"Run": None})
    ids = [run.run_id for run in runs]
    if st.session_state.get(train_state.TRAIN_RUN_KEY) not in ids:
        st.session_state[train_state.TRAIN_RUN_KEY] = ids[0]
    by_id = {run.run_id: run for run in runs}
    # The label is the run's id alone: a label that changed with the run's state would make
    # Streamlit treat the box as a new widget and lose the choice.
    chosen = st.selectbox("Show run", ids, key=train_state.TRAIN_RUN_KEY)
    _details(by_id[chosen], settings)
