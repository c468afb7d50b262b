""" "Use this model": install a successful run's card and weights into the model registry.

Runs launched by :mod:`core.jobs.service` write their card and weight file inside the run folder
(``card/``), never straight into the registry: a run that fails after writing them (the trainer's
own reload check, a crash, a cancel) then leaves nothing half-registered, and a run on a Ray
cluster needs no write access to the app's folders. Installing copies the weight file into the user
cache's ``weights/`` folder (searched by the registry), checks its sha256 against the card, and only
then writes the card into ``Settings.user_cards_dir``: a card is never visible without its weights.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import models
from core.errors import DFIError
from core.settings import Settings
from core.training.run_folder import CARD_DIR, read_run
from models.architectures import FAMILY_OF
from models.cards import SHIPPED_CARDS_DIR, ModelCard, read_card, write_card
from models.weights import sha256_of


class PublishError(DFIError):
    """A run's model cannot be installed (not finished, damaged, or its name is taken)."""


def run_card(run_dir: Path) -> ModelCard:
    """The card a succeeded run wrote in its folder, validated, with its weight file's hash checked.

    Raises:
        PublishError: the run did not succeed, or its card or weights are missing or damaged.
    """
    run = read_run(run_dir)
    if run.state != "succeeded":
        raise PublishError(f"run {run.run_id} has not finished successfully ({run.state}), so it has no model")
    path = Path(run_dir) / CARD_DIR / f"{run.card_id}.json"
    if not path.is_file():
        raise PublishError(f"run {run.run_id} has no model card at {path}")
    card = read_card(path, FAMILY_OF)
    weights = path.parent / card.weights.file
    if not weights.is_file() or sha256_of(weights) != card.weights.sha256:
        raise PublishError(f"the weights of run {run.run_id} are missing or damaged ({weights})")
    return card


def installed_card(card_id: str, settings: Settings) -> ModelCard | None:
    """The registry's card with this id, or None."""
    return next((c for c in models.list_models(settings) if c.id == card_id), None)


def use_run(run_dir: Path, settings: Settings, replace: bool = False) -> ModelCard:
    """Install the run's model so the Analyze and Compare pages offer it; returns its card.

    Installing the same run again is a no-op. Args: replace: allow replacing an installed model
    of the same name (never a model shipped with the app).

    Raises:
        PublishError: see :func:`run_card`; the name is taken; a same-named weight file in a folder
            the registry searches first would be loaded instead.
    """
    card = run_card(run_dir)
    existing = installed_card(card.id, settings)
    if existing is not None and existing.weights.sha256 == card.weights.sha256:
        return existing
    if existing is not None and existing.source and existing.source.parent.resolve() == SHIPPED_CARDS_DIR.resolve():
        raise PublishError(f"{card.id} is the name of a model shipped with the app; train it with another name")
    if existing is not None and not replace:
        raise PublishError(
            f"a model named {card.id} is already installed; choose to replace it, or train with another name"
        )
    target_dir = settings.cache_dir / "weights"
    for folder in settings.weights_search_path():
        if folder.resolve() == target_dir.resolve():
            break
        if (folder / card.weights.file).exists():
            raise PublishError(
                f"{folder / card.weights.file} exists and would be loaded instead of this run's "
                "weights; train with another name"
            )
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / card.weights.file
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(Path(run_dir) / CARD_DIR / card.weights.file, tmp)
    if sha256_of(tmp) != card.weights.sha256:
        tmp.unlink(missing_ok=True)
        raise PublishError(f"copying the weights of {card.id} to {target_dir} failed (checksum differs)")
    tmp.replace(target)
    path = write_card(card, settings.user_cards_dir, FAMILY_OF)  # last: never a card without weights
    installed = installed_card(card.id, settings)
    if installed is None or not models.weights_status(installed, settings).ok:
        path.unlink(missing_ok=True)
        raise PublishError(f"the registry could not use {card.id} after installing it; nothing was installed")
    return installed
