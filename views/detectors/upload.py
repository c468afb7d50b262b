"""'Add your own weights' on the Models page: upload, check against an architecture, describe, save."""

from __future__ import annotations

import streamlit as st

import models
from core.settings import Settings
from models.user_weights import UserWeightsError, architecture_name, install_user_weights
from views.detectors import state as detectors_state

OUTPUT_WORDS = {"p_fake": "the chance the face is FAKE", "p_real": "the chance the face is REAL"}


def render_upload(settings: Settings, can_change: bool = True) -> None:
    """The uploader, the architecture, the check result, then the card form and the Save button.

    Only for an admin (``can_change``): saving installs weights for everyone, and even checking a
    file costs the server a process of its own.
    """
    st.subheader("Add your own weights")
    st.write(
        "Upload a Keras weights file (`.weights.h5`, or an older `.h5` such as the MesoNet authors' "
        "files) for one of the architectures below. It is checked by loading it into that "
        "architecture — weights only, nothing in the file is run — and then saved with a card you fill in."
    )
    if not can_change:
        st.caption("Adding weights is for an admin of this server (see the top of the page).")
        return
    file_col, arch_col = st.columns([3, 2])
    uploaded = file_col.file_uploader(
        "Weights file",
        type=["h5", "hdf5"],
        key=detectors_state.models_upload_key(),
        max_upload_size=settings.max_weights_upload_mb,
        help=f"Up to {settings.max_weights_upload_mb} MB.",
    )
    architecture = arch_col.selectbox(
        "Architecture it was trained for",
        list(models.ARCHITECTURES),
        format_func=architecture_name,
        key=detectors_state.MODELS_ARCH_KEY,
    )
    if uploaded is None:
        return
    with st.spinner(f"Checking {uploaded.name} against {architecture_name(architecture)}…"):
        check = detectors_state.checked_upload(uploaded, architecture)
    if isinstance(check, str):
        st.error(f"{uploaded.name} cannot be used: {check}.", icon=":material/error:")
        return
    st.success(
        f"{uploaded.name} fits {architecture_name(architecture)} ({check.format_words}, "
        f"{check.size_bytes / 2**20:.2f} MB, sha256 {check.sha256[:12]}…).",
        icon=":material/check_circle:",
    )
    with st.form("models_card_form"):
        tag = st.text_input(
            "Short name (becomes the id " + f"`{architecture}.<short name>`)",
            key="models_tag",
            placeholder="e.g. my_df",
            max_chars=40,
        )
        name = st.text_input("Display name", key="models_display_name", placeholder="e.g. Meso4 (my training)")
        output = st.radio(
            "What does the network's output mean?",
            list(OUTPUT_WORDS),
            key="models_output",
            format_func=OUTPUT_WORDS.get,
            horizontal=True,
            help="The MesoNet authors' published files output the chance of REAL.",
        )
        licence = st.text_input("Licence of the weights", key="models_license", placeholder="e.g. Apache-2.0")
        trained_on = st.text_area("What it was trained on", key="models_trained_on", height=80)
        description = st.text_area("Notes (optional)", key="models_description", height=80)
        st.caption(
            f"Input size {models.ARCHITECTURES[architecture].input_size} px comes from the architecture; "
            "the decision line starts at 0.50 and can be changed in the card file."
        )
        saved = st.form_submit_button("Save the weights and card", key=detectors_state.MODELS_SAVE_KEY, type="primary")
    if not saved:
        return
    try:
        card = install_user_weights(
            uploaded.getvalue(),
            architecture,
            tag,
            name,
            output,
            licence,
            trained_on,
            description,
            source_name=uploaded.name,
            settings=settings,
        )
    except UserWeightsError as err:
        st.error(f"Not saved: {err.message}.", icon=":material/error:")
        return
    detectors_state.models_saved(
        f"Saved **{card.display_name}** as `{card.id}`; it is now offered on the Analyze and Compare pages."
    )
    st.rerun()
