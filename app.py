"""Deepfake Inspector: the Streamlit entry point (``streamlit run app.py``).

A router only: page config, the shared sidebar, and st.navigation over views/<page>/page.py. The
pages live in views/, not pages/: Streamlit still scans a folder named pages/ beside the entry script, and a new
session opened on a deep link (/compare) then ran that file without this router, with every helper
module listed as a page (a browser test keeps this fixed).
"""

import streamlit as st

from views.common import loaded, sidebar

# Load MTCNN and the default detectors in the background from the first run on (once per process),
# so the first clip does not wait for them; the first page is not delayed by it.
loaded.start_preload()

st.set_page_config(
    page_title="Deepfake Inspector",
    page_icon=":material/face_retouching_off:",
    layout="wide",
    menu_items={"About": "Deepfake Inspector: is the face in this clip real or manipulated?"},
)

page = st.navigation(
    [
        st.Page(
            "views/analyze/page.py", title="Analyze a clip", icon=":material/search:", url_path="analyze", default=True
        ),
        st.Page(
            "views/compare/page.py", title="Compare detectors", icon=":material/compare_arrows:", url_path="compare"
        ),
        st.Page(
            "views/detectors/page.py",
            title="Detectors and weights",
            icon=":material/model_training:",
            url_path="models",
        ),
        st.Page("views/train/page.py", title="Train a detector", icon=":material/school:", url_path="train"),
        st.Page("views/scan/page.py", title="Scan a folder", icon=":material/folder_open:", url_path="scan"),
    ]
)
sidebar.render()
page.run()
