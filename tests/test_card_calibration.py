"""A card's optional calibration: validated on reading, kept on writing, applied by Detector.predict."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import models
from models.calibration import apply_calibration
from models.cards import SHIPPED_CARDS_DIR, CardError, read_card, write_card

FAMILIES = {name: arch.family for name, arch in models.ARCHITECTURES.items()}
CALIBRATION = {"method": "platt", "a": 2.0, "b": 0.5, "n": 113, "fitted_on": "out-of-source clip scores"}


def card_file(tmp_path: Path, calibration, card_id: str = "meso4.df") -> Path:
    """meso4.df's card with ``calibration`` set (or the field removed for ``...``), in tmp_path."""
    data = json.loads((SHIPPED_CARDS_DIR / "meso4.df.json").read_text())
    data["id"] = card_id
    if calibration is not ...:
        data["calibration"] = calibration
    path = tmp_path / f"{card_id}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


@pytest.mark.parametrize("path", sorted(SHIPPED_CARDS_DIR.glob("*.json")), ids=lambda p: p.stem)
def test_shipped_cards_load_and_rewrite_byte_identically(path, tmp_path):
    card = read_card(path, FAMILIES)
    # A card without calibration writes none; one with it (the project's own) keeps it whole.
    raw = json.loads(path.read_text())
    assert card.calibration == raw.get("calibration")
    assert ("calibration" in card.to_dict()) == ("calibration" in raw)
    written = write_card(card, tmp_path, FAMILIES)
    assert written.read_bytes() == path.read_bytes()


def test_null_calibration_means_none(tmp_path):
    assert read_card(card_file(tmp_path, None), FAMILIES).calibration is None


def test_a_calibration_is_kept_and_written_back(tmp_path):
    card = read_card(card_file(tmp_path, CALIBRATION), FAMILIES)
    assert card.calibration == CALIBRATION
    assert card.to_dict()["calibration"] == CALIBRATION
    again = read_card(write_card(card, tmp_path / "out", FAMILIES), FAMILIES)
    assert again.calibration == CALIBRATION and again == card


@pytest.mark.parametrize(
    "calibration, problem",
    [
        ({"method": "platt", "a": 0, "b": 0.0}, "calibration.a must be a number above 0"),
        ({"method": "platt", "a": -1.5, "b": 0.0}, "calibration.a must be a number above 0"),
        ({"method": "platt", "a": "2", "b": 0.0}, "calibration.a must be a number above 0"),
        ({"method": "platt", "a": True, "b": 0.0}, "calibration.a must be a number above 0"),
        ({"method": "platt", "b": 0.0}, "calibration.a must be a number above 0"),
        ({"method": "platt", "a": 1.0}, "calibration.b must be a number"),
        ({"method": "isotonic", "a": 1.0, "b": 0.0}, "calibration.method 'isotonic' is not one of platt"),
        ({"a": 1.0, "b": 0.0}, "calibration.method None"),
        ({"method": "platt", "a": 1.0, "b": 0.0, "slope": 1}, "unknown field(s) slope"),
        ({"method": "platt", "a": 1.0, "b": 0.0, "fitted_on": 3}, "calibration.fitted_on must be a string"),
        ([1.0, 0.0], "calibration must be an object or null"),
    ],
)
def test_an_unusable_calibration_is_a_card_error_naming_the_file(tmp_path, calibration, problem):
    path = card_file(tmp_path, calibration)
    with pytest.raises(CardError) as caught:
        read_card(path, FAMILIES)
    assert str(path) in str(caught.value) and problem in str(caught.value)


class FixedModel:
    """Stands in for a keras.Model: the same raw outputs whatever the batch holds."""

    def __init__(self, outputs):
        self.outputs = np.asarray(outputs, np.float32).reshape(-1, 1)

    def predict_on_batch(self, batch):
        assert batch.shape[0] == self.outputs.shape[0]
        return self.outputs


def test_predict_applies_the_cards_calibration_after_the_p_real_conversion(tmp_path):
    from models.detector import Detector

    plain = read_card(card_file(tmp_path, ...), FAMILIES)  # output p_real
    p_real = np.array([0.05, 0.3, 0.5, 0.8, 0.99], np.float32)
    crops = np.zeros((p_real.size, 256, 256, 3), np.uint8)
    detector = Detector(plain, FixedModel(p_real))
    raw = detector.predict_raw(crops)
    np.testing.assert_allclose(raw, 1.0 - p_real.astype(np.float64))
    assert np.array_equal(detector.predict(crops), raw)  # no calibration: unchanged

    calibrated = detector.with_card(dataclasses.replace(plain, calibration={"method": "platt", "a": 2.0, "b": 0.5}))
    got = calibrated.predict(crops)
    assert np.array_equal(got, apply_calibration({"method": "platt", "a": 2.0, "b": 0.5}, raw))
    assert got.dtype == np.float64 and not np.allclose(got, raw)
    assert np.array_equal(calibrated.predict_raw(crops), raw)
    assert calibrated.predict(np.zeros((0, 256, 256, 3), np.uint8)).shape == (0,)
