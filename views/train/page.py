"""Train page: fine-tune a detector on your own labelled clips, watch it learn, then use it.

Thin on purpose: the form (views/train/form.py) submits a run through core.jobs.service, which starts
``python -m core train`` in its own process (or as a Ray job); the runs panel
(views/train/runs.py) only reads the run folders. Training never runs inside this page.
"""

from __future__ import annotations

import streamlit as st

from core.errors import DFIError
from core.settings import get_settings
from views.train import form as _train_form
from views.train import runs as _train_runs
from views.train import state as train_state

st.title("Train a detector")
st.caption(
    "Teach Meso4 or Xception on your own real and fake clips, watch it learn, and then compare it "
    "with the others on the Analyze page."
)

try:
    settings = get_settings()
except ValueError as err:  # a malformed DFI_* variable
    st.error(f"The settings could not be read: {err}")
    st.stop()

flashed = train_state.pop_flash()
if flashed:
    getattr(st, flashed[0])(flashed[1])

st.subheader("New training run")
try:
    _train_form.render(settings)
except DFIError as err:  # e.g. a broken model card among the starting points
    st.error(f"The form could not be shown: {err.message}")

st.subheader("Runs")
_train_runs.render(settings)
