"""Deepfake Inspector core: clip in, verdicts out. No Streamlit here (a test enforces it)."""

import os

# Keep TensorFlow's C++ start-up chatter out of the command line and the logs. Set here, not only
# in models/: core.engine.faces imports mtcnn, which imports TensorFlow, and a caller (extract-faces, a
# test) may get there before anything imports models/. Every import of models/ passes through here
# too (it imports core.errors). setdefault lets a developer turn the logs back on; the flag lets
# ``python -m core`` raise this default to "3" without overriding a level the user chose.
_TF_LOG_LEVEL_FROM_USER = "TF_CPP_MIN_LOG_LEVEL" in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
