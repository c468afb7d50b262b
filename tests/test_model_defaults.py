"""The user's default card per family (models/defaults.py) and how default_model_ids honours it."""

from __future__ import annotations

import json

import pytest

import models
from core.hashing import file_sha256
from core.settings import get_settings
from models.cards import card_from_dict, write_card
from models.defaults import DefaultChoiceError, defaults_path, read_default_choices, set_default_choice


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DFI_PROJECT_WEIGHTS_DIR", str(tmp_path / "no-project-weights"))
    monkeypatch.delenv("DFI_WEIGHTS_DIR", raising=False)
    return get_settings()


def add_card(settings, tag: str, auc: float, with_weights: bool = True) -> str:
    """A user meso4 card whose weights file exists (any bytes: only its sha256 is checked here)."""
    weights = settings.cache_dir / "weights" / f"meso4_{tag}.h5"
    weights.parent.mkdir(parents=True, exist_ok=True)
    weights.write_bytes(f"weights of {tag}".encode())
    sha = file_sha256(weights)
    if not with_weights:
        weights.unlink()
    card = card_from_dict(
        {
            "id": f"meso4.{tag}",
            "family": "mesonet",
            "architecture": "meso4",
            "display_name": f"Meso4 {tag}",
            "input_size": 256,
            "preprocess": "unit",
            "output": "p_fake",
            "weights": {"file": weights.name, "sha256": sha, "url": None, "license": "test"},
            "threshold": 0.5,
            "band": [0.35, 0.65],
            "trained_on": "test",
            "created": "2026-01-01",
            "metrics": {"video_auc": auc, "out_of_source": True, "protocol": "test"},
            "description": "test card",
        },
        "test",
        {name: arch.family for name, arch in models.ARCHITECTURES.items()},
    )
    write_card(card, settings.user_cards_dir, {n: a.family for n, a in models.ARCHITECTURES.items()})
    return card.id


def mesonet_default(settings) -> str:
    return next(i for i in models.default_model_ids(settings) if models.get_card(i, settings).family == "mesonet")


def test_without_a_choice_the_best_auc_among_present_weights_wins(settings):
    add_card(settings, "good", 0.9)
    add_card(settings, "fair", 0.8)
    add_card(settings, "gone", 0.99, with_weights=False)
    assert read_default_choices(settings) == {}
    assert mesonet_default(settings) == "meso4.good"


def test_a_choice_is_kept_in_a_file_and_honoured(settings):
    add_card(settings, "good", 0.9)
    add_card(settings, "fair", 0.8)
    set_default_choice("mesonet", "meso4.fair", settings)
    assert json.loads(defaults_path(settings).read_text()) == {"mesonet": "meso4.fair"}
    assert mesonet_default(settings) == "meso4.fair"
    assert "xception.dfi2" in models.default_model_ids(settings)  # other families untouched
    set_default_choice("mesonet", None, settings)
    assert read_default_choices(settings) == {} and mesonet_default(settings) == "meso4.good"


def test_a_choice_without_weights_falls_back_but_is_remembered(settings):
    add_card(settings, "good", 0.9)
    set_default_choice("mesonet", "meso4.df", settings)  # shipped card, weights not installed here
    assert mesonet_default(settings) == "meso4.good"
    assert read_default_choices(settings) == {"mesonet": "meso4.df"}


def test_a_choice_whose_card_was_removed_falls_back(settings):
    add_card(settings, "good", 0.9)
    add_card(settings, "fair", 0.8)
    set_default_choice("mesonet", "meso4.fair", settings)
    (settings.user_cards_dir / "meso4.fair.json").unlink()
    assert mesonet_default(settings) == "meso4.good"


def test_invalid_choices_are_refused(settings):
    with pytest.raises(DefaultChoiceError, match="no model 'meso4.nope'"):
        set_default_choice("mesonet", "meso4.nope", settings)
    with pytest.raises(DefaultChoiceError, match="is a mesonet model"):
        set_default_choice("xception", "meso4.df", settings)
    assert not defaults_path(settings).exists()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"mesonet": 3}'])
def test_a_damaged_choices_file_is_ignored(settings, content):
    add_card(settings, "good", 0.9)
    add_card(settings, "fair", 0.8)
    defaults_path(settings).write_text(content)
    assert read_default_choices(settings) == {}
    assert mesonet_default(settings) == "meso4.good"
    set_default_choice("mesonet", "meso4.fair", settings)  # and a new choice repairs it
    assert mesonet_default(settings) == "meso4.fair"
