"""Deepfake Inspector: the Streamlit entry point (``streamlit run app.py``).

A router only: page config, the shared sidebar, and st.navigation over pages/. Pages for training,
comparing and model cards are added beside analyze.py by their own issues.
"""

import streamlit as st

from pages import _sidebar

st.set_page_config(
    page_title="Deepfake Inspector",
    page_icon=":material/face_retouching_off:",
    layout="wide",
    menu_items={"About": "Deepfake Inspector: is the face in this clip real or manipulated?"},
)

page = st.navigation([
    st.Page("pages/analyze.py", title="Analyze a clip", icon=":material/search:", default=True),
    st.Page("pages/compare.py", title="Compare detectors", icon=":material/compare_arrows:"),
    st.Page("pages/models.py", title="Detectors and weights", icon=":material/model_training:"),
    st.Page("pages/train.py", title="Train a detector", icon=":material/school:"),
])
_sidebar.render()
page.run()
