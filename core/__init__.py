"""Deepfake Inspector core: clip in, verdicts out. No Streamlit here (a test enforces it)."""

__version__ = "0.1.0"
