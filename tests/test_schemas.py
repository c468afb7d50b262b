"""The JSON Schemas in core/schemas/ are the one statement of each file's shape; the code agrees."""

from __future__ import annotations

import dataclasses
import json

import pytest

from core.schema_check import SCHEMAS_DIR, first_problem
from core.training.crops import BALANCE_MODES, PSEUDO_FAKE_MODES
from core.training.networks import TrainError
from core.training.spec import LOSSES, TrainSpec, spec_from_dict
from models.architectures import FAMILIES
from models.cards import CALIBRATION_METHODS, OUTPUTS, PREPROCESS, SHIPPED_CARDS_DIR, WEIGHT_SUFFIXES


def _schema(name: str) -> dict:
    return json.loads((SCHEMAS_DIR / f"{name}.schema.json").read_text(encoding="utf-8"))


def test_card_schema_choices_are_the_codes():
    props = _schema("model_card")["properties"]
    assert set(props["family"]["enum"]) == set(FAMILIES)
    assert set(props["preprocess"]["enum"]) == set(PREPROCESS)
    assert set(props["output"]["enum"]) == set(OUTPUTS)
    assert set(props["calibration"]["properties"]["method"]["enum"]) == set(CALIBRATION_METHODS)
    suffixes = props["weights"]["properties"]["file"]["pattern"]
    assert all(s.lstrip(".") in suffixes for s in WEIGHT_SUFFIXES)


def test_spec_schema_lists_every_spec_field_and_its_choices():
    props = _schema("train_spec")["properties"]
    assert set(props) == {f.name for f in dataclasses.fields(TrainSpec)}
    assert set(props["loss"]["enum"]) - {None} == set(LOSSES)
    assert set(props["balance"]["enum"]) == set(BALANCE_MODES)
    assert set(props["pseudo_fakes"]["enum"]) == set(PSEUDO_FAKE_MODES)


@pytest.mark.parametrize("path", sorted(SHIPPED_CARDS_DIR.glob("*.json")), ids=lambda p: p.name)
def test_shipped_cards_fit_the_schema(path):
    assert first_problem("model_card", json.loads(path.read_text(encoding="utf-8"))) is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"epochs": "3"}, "epochs must be at least 1"),
        ({"epochs": 2.5}, "epochs must be at least 1"),
        ({"lr": 0}, "learning rates must be positive"),
        ({"augment": "yes"}, "augment must be true or false"),
        ({"band": [0.2]}, "band"),
        ({"train_splits": "train"}, "train_splits must be a list"),
        ({"epochz": 3}, "unknown field(s) epochz"),
    ],
)
def test_bad_spec_values_are_one_plain_line(change, words):
    with pytest.raises(TrainError) as caught:
        spec_from_dict({"arch": "meso4", "data": "crops/", "tag": "mine", **change})
    assert words in caught.value.message
    assert "\n" not in caught.value.message


def test_a_good_spec_passes_and_not_an_object_fails():
    assert spec_from_dict({"arch": "meso4", "data": "crops/", "tag": "mine", "epochs": 3}).epochs == 3
    with pytest.raises(TrainError, match="a training spec must be a JSON object"):
        spec_from_dict(["meso4"])
