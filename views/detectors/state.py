"""The Detectors page's state: widget keys, the checked upload and one-time notices."""

from __future__ import annotations

import hashlib

import streamlit as st

from views.common.upload import UPLOAD_TYPES, ClipSource, clip_file, safe_upload_name  # noqa: F401

MODELS_UPLOAD_KEY = "models_upload"  # plus a generation number: see models_upload_key()
MODELS_ARCH_KEY = "models_architecture"
MODELS_SAVE_KEY = "models_save"
MODELS_CHECK_KEY = "dfi_models_check"  # (file id, architecture, WeightsCheck | error message)
MODELS_NOTICE_KEY = "dfi_models_notice"  # ("success" or "error", text) shown once after a rerun
MODELS_UPLOAD_GENERATION_KEY = "dfi_models_upload_generation"


def default_key(family: str) -> str:
    """Widget key of the default-model choice for ``family`` on the Models page."""
    return f"models_default_{family}"


def checked_upload(uploaded, architecture: str):
    """The WeightsCheck of an uploaded weights file for ``architecture``, or its error message.

    Checked once per (upload, architecture) and held for the session: building and loading an
    Xception takes seconds, and every click reruns the page.
    """
    from models.user_weights import UserWeightsError, check_weights

    file_id = getattr(uploaded, "file_id", None) or hashlib.sha256(uploaded.getvalue()).hexdigest()
    held = st.session_state.get(MODELS_CHECK_KEY)
    if held is not None and held[:2] == (file_id, architecture):
        return held[2]
    try:
        outcome = check_weights(uploaded.getvalue(), architecture)
    except UserWeightsError as err:
        outcome = err.message
    st.session_state[MODELS_CHECK_KEY] = (file_id, architecture, outcome)
    return outcome


def models_upload_key() -> str:
    """The weights uploader's key; a new one after each save empties the uploader and its form."""
    return f"{MODELS_UPLOAD_KEY}_{st.session_state.get(MODELS_UPLOAD_GENERATION_KEY, 0)}"


def models_saved(text: str) -> None:
    """After a save: say so once, and start over with an empty uploader."""
    st.session_state[MODELS_NOTICE_KEY] = ("success", text)
    st.session_state[MODELS_UPLOAD_GENERATION_KEY] = st.session_state.get(MODELS_UPLOAD_GENERATION_KEY, 0) + 1


def models_notice(kind: str | None = None, text: str | None = None) -> tuple[str | None, str | None]:
    """Store a one-time ("success" | "error", text) notice, or with no arguments take the pending one."""
    if kind is not None:
        st.session_state[MODELS_NOTICE_KEY] = (kind, text)
        return kind, text
    return st.session_state.pop(MODELS_NOTICE_KEY, (None, None))
