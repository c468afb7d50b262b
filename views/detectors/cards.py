"""One model card on the Models page: what it is, whether its weights are usable, and its download."""

from __future__ import annotations

import streamlit as st

import models
from core.errors import DFIError
from core.settings import Settings
from models.user_weights import architecture_name
from views.common.sidebar import weights_origin
from views.common.trust_words import metrics_sentence

STATE_WORDS = {
    "present": (":green[●] Weights installed", "sha256 checked"),
    "missing": (":gray[○] Weights not installed", ""),
    "hash_mismatch": (":red[✖] Weights file damaged or not the right one", "the checksum does not match"),
}


def render_card(card, status, is_default: bool, settings: Settings, can_change: bool = True) -> None:
    """A bordered box: name and state, facts in two columns, details, and a download button (for
    an admin: ``can_change``, see views/common/admin.py)."""
    with st.container(border=True, key=f"model_card_{card.id.replace('.', '_')}"):
        badge = " · :blue-badge[default]" if is_default else ""
        st.markdown(f"**{card.display_name}** `{card.id}`{badge}")
        state, detail = STATE_WORDS[status.state]
        where = f" · {weights_origin(status.path, settings)}" if status.ok and status.path else ""
        st.markdown(f"{state}{where}" + (f" ({detail})" if detail else ""))
        if status.state == "hash_mismatch":
            st.error(status.message, icon=":material/gpp_bad:")
        elif status.state == "missing" and card.weights.sha256 is None:
            st.caption(f"No weights exist yet: {card.weights.note}")
        left, right = st.columns(2)
        left.markdown(
            f"**Family:** {card.family}  \n**Architecture:** {architecture_name(card.architecture)}"
            f"  \n**Input:** {card.input_size}x{card.input_size} px, {card.preprocess} scaling"
            f"  \n**Raw output:** {'chance of real (flipped to chance of fake)' if card.output == 'p_real' else 'chance of fake'}"
        )
        source = (card.weights.url or "added on this server") if card.weights.sha256 else "none yet"
        right.markdown(
            f"**Weights:** `{card.weights.file}`  \n**Source:** {source}  \n"
            f"**Licence:** {card.weights.license}  \n**Decision line:** {card.threshold:.2f} "
            f"(unsure from {card.band[0]:.2f} to {card.band[1]:.2f})"
        )
        with st.expander("Training data, measured accuracy, description"):
            st.markdown(f"**Trained on:** {card.trained_on}")
            st.markdown("**How well it did:** " + metrics_sentence(card.metrics or {}))
            if (card.metrics or {}).get("protocol"):
                st.caption(f"Measured as: {card.metrics['protocol']}")
            st.markdown(card.description)
            st.caption(f"Created {card.created}" + (f" · card file {card.source}" if card.source else ""))
        if can_change and not status.ok and card.weights.url and card.weights.sha256:
            _download(card, settings)


def _download(card, settings: Settings) -> None:
    """An explicit download button; the file is streamed, hash-checked, then put in place."""
    if not st.button(
        f"Download the weights ({card.weights.file})",
        key=f"download_weights_{card.id}",
        icon=":material/download:",
        help=f"From {card.weights.url}, checked against the card's sha256.",
    ):
        return
    bar = st.progress(0.0, text="Connecting…")

    def progress(done: int, total: int | None) -> None:
        text = f"{done / 2**20:.1f} MB" + (f" of {total / 2**20:.1f} MB" if total else "")
        bar.progress(min(done / total, 1.0) if total else 0.0, text=text)

    try:
        path = models.download_weights(card.id, settings, progress=progress)
    except DFIError as err:
        bar.empty()
        st.error(f"The download did not work: {err.message}", icon=":material/cloud_off:")
        return
    bar.empty()
    st.success(f"Downloaded and checked: {path}", icon=":material/check_circle:")
    st.rerun()  # redraw the card (and the sidebar) with the weights installed
