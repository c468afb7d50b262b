"""Deepfake Inspector: the Streamlit entry point (``streamlit run app.py``).

A router only: page config, the shared sidebar, and st.navigation over views/. The pages live in
views/, not pages/: Streamlit still scans a folder named pages/ beside the entry script, and a new
session opened on a deep link (/compare) then ran that file without this router, with every helper
module listed as a page (a browser test keeps this fixed).
"""

import streamlit as st

from views import _sidebar

st.set_page_config(
    page_title="Deepfake Inspector",
    page_icon=":material/face_retouching_off:",
    layout="wide",
    menu_items={"About": "Deepfake Inspector: is the face in this clip real or manipulated?"},
)

page = st.navigation([
    st.Page("views/analyze.py", title="Analyze a clip", icon=":material/search:", default=True),
    st.Page("views/compare.py", title="Compare detectors", icon=":material/compare_arrows:"),
    st.Page("views/models.py", title="Detectors and weights", icon=":material/model_training:"),
    st.Page("views/train.py", title="Train a detector", icon=":material/school:"),
])
_sidebar.render()
page.run()
