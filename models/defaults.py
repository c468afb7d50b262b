"""The user's choice of default model card per family, kept in a small JSON file.

``<cache_dir>/defaults.json`` holds ``{"<family>": "<card id>", ...}``. The registry's
``default_model_ids`` honours a choice while that card exists and its weights are present; otherwise
it falls back to its own rule (the best video AUC among present cards), so a deleted card or a
removed weights file never leaves a family without a usable default.

No Streamlit and no Keras here: the Models page and the command line call these functions.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from core.errors import DFIError
from core.files import write_text_atomic
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

DEFAULTS_FILE = "defaults.json"


class DefaultChoiceError(DFIError):
    """A default that cannot be chosen: unknown card, or a card of another family."""


def defaults_path(settings: Settings | None = None) -> Path:
    """Where the choices are kept: ``<cache_dir>/defaults.json``."""
    return (settings or get_settings()).cache_dir / DEFAULTS_FILE


def read_default_choices(settings: Settings | None = None) -> dict[str, str]:
    """The chosen card id per family; empty when nothing was chosen.

    A file that cannot be read or is not a JSON object of strings is ignored (with a log line), as
    if nothing had been chosen: it is only a preference, and the registry has its own fallback.
    """
    path = defaults_path(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log.warning("ignoring the default-model choices in %s: %s", path, exc)
        return {}
    if not isinstance(data, dict):
        log.warning("ignoring the default-model choices in %s: not a JSON object", path)
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}


def set_default_choice(family: str, card_id: str | None, settings: Settings | None = None) -> None:
    """Make ``card_id`` the default of ``family``; None forgets the choice (automatic again).

    Raises:
        DefaultChoiceError: no such card, or the card belongs to another family.
    """
    import models  # the registry imports this module

    settings = settings or get_settings()
    if card_id is not None:
        cards = {card.id: card for card in models.list_models(settings)}
        if card_id not in cards:
            raise DefaultChoiceError(f"there is no model {card_id!r} to make the default")
        if cards[card_id].family != family:
            raise DefaultChoiceError(
                f"{card_id} is a {cards[card_id].family} model, so it cannot be the {family} default"
            )
    choices = read_default_choices(settings)
    if card_id is None:
        choices.pop(family, None)
    else:
        choices[family] = card_id
    write_text_atomic(defaults_path(settings), json.dumps(choices, indent=2, sort_keys=True) + "\n")
