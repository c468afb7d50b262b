"""Models page: every detector card, its weights, each family's default, and adding your own weights.

Thin on purpose: the registry (models/) says what exists and whether its weights are usable; this page
lists it per family, offers the explicit actions (choose a default, download, upload) and shows every
failure as a plain message.
"""

from __future__ import annotations

import logging

import streamlit as st

import models
from core.engine.report_queries import FAMILY_NAMES
from core.errors import DFIError
from core.settings import get_settings
from models.defaults import read_default_choices, set_default_choice
from views.common import admin, loaded
from views.detectors import state as detectors_state
from views.detectors.cards import render_card
from views.detectors.upload import render_upload

log = logging.getLogger(__name__)

AUTOMATIC = "automatic"


def _save_default(family: str) -> None:
    """Default picker callback: remember the choice (or forget it for 'automatic')."""
    value = st.session_state[detectors_state.default_key(family)]
    if not admin.is_admin():  # the picker is disabled for visitors; checked again here
        detectors_state.models_notice("error", "The default was not changed: only an admin of this server can")
        return
    try:
        set_default_choice(family, None if value == AUTOMATIC else value)
    except DFIError as err:  # e.g. the card file was removed since the page was drawn
        detectors_state.models_notice("error", f"The default was not changed: {err.message}")


def _default_picker(family: str, members: list, in_use: str | None, settings, can_change: bool) -> None:
    """The family's default choice; says which card is actually used and why, when it differs."""
    chosen = read_default_choices(settings).get(family)
    options = [AUTOMATIC, *(card.id for card in members)]
    names = {card.id: f"{card.display_name} ({card.id})" for card in members}
    names[AUTOMATIC] = "Automatic: the best measured one that is installed"
    st.selectbox(
        f"Default {FAMILY_NAMES.get(family, family)} detector",
        options,
        index=options.index(chosen) if chosen in options else 0,
        format_func=names.get,
        key=detectors_state.default_key(family),
        on_change=_save_default,
        args=(family,),
        disabled=not can_change,
        help="Used by the Analyze and Compare pages unless you pick others there.",
    )
    if chosen in names and chosen != in_use:
        st.caption(
            f":orange[{chosen} is chosen, but its weights are not installed, so {in_use} is used until they are.]"
        )


def _page() -> None:
    st.title("Detectors and their weights")
    st.write(
        "Every detector this app knows, whether its weights are installed here, where they come from "
        "and how well it did when measured. Pick which one of each kind is used by default, download "
        "missing weights, or add weights of your own."
    )
    kind, notice = detectors_state.models_notice()
    if kind == "error":
        st.error(notice, icon=":material/error:")
    elif notice:
        st.success(notice, icon=":material/check_circle:")
    can_change = admin.require("change the detectors (defaults, downloads, your own weights)")
    settings = get_settings()
    overview = loaded.model_overview(settings)
    defaults = models.default_model_ids(settings)
    for family in dict.fromkeys(card.family for card, _ in overview):
        members = [(card, status) for card, status in overview if card.family == family]
        st.header(FAMILY_NAMES.get(family, family))
        in_use = next((i for i in defaults if any(card.id == i for card, _ in members)), None)
        _default_picker(family, [card for card, _ in members], in_use, settings, can_change)
        for card, status in members:
            render_card(card, status, card.id == in_use, settings, can_change=can_change)
    st.divider()
    render_upload(settings, can_change=can_change)


try:
    _page()
except DFIError as err:
    st.error(err.message, icon=":material/error:")
except Exception:  # noqa: BLE001 - the page must never show a traceback
    log.exception("the Models page failed")
    st.error("Something went wrong on this page. The details are in the server log.", icon=":material/error:")
