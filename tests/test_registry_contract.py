"""The registry contract, parametrised over every card (timm's test_models.py pattern).

Every card must build without weights, take crops of any size and give p_fake in [0, 1]; its JSON
must round-trip; and the package boundary holds (nothing in core/ or models/ imports streamlit).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import models
from core.errors import UnknownModelError
from core.settings import PROJECT_ROOT, get_settings
from models.cards import SHIPPED_CARDS_DIR, card_from_dict

CARD_IDS = [card.id for card in models.list_models()]
# Keras' automatic names ("conv2d_3", "dense"): a layer left unnamed by a builder.
_AUTO_NAME = re.compile(
    r"^(input_layer|conv2d|batch_normalization|max_pooling2d|dense|dropout|flatten|concatenate|"
    r"leaky_re_lu|functional)(_\d+)?$"
)


def test_the_four_mesonet_cards_and_the_xception_card_are_registered():
    expected = {"meso4.df", "meso4.f2f", "mesoinception4.df", "mesoinception4.f2f", "meso4.dfi2", "xception.dfi2"}
    assert expected <= set(CARD_IDS)


@pytest.fixture(scope="module")
def detectors():
    """One weightless detector per card, built once for the whole module."""
    return {card.id: models.build_detector(card, weights=False) for card in models.list_models()}


@pytest.mark.slow
@pytest.mark.parametrize("card_id", CARD_IDS)
def test_builds_without_weights_and_predicts_p_fake(card_id, detectors):
    detector = detectors[card_id]
    size = detector.card.input_size
    assert detector.model.input_shape == (None, size, size, 3)
    assert detector.model.output_shape == (None, 1)
    p = detector.predict(np.zeros((2, size, size, 3), np.uint8))
    assert p.shape == (2,) and p.dtype == np.float64
    assert np.all((p >= 0) & (p <= 1))
    rng = np.random.default_rng(0)
    mixed = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((40, 40), (500, 380), (size, size))]
    p_mixed = detector.predict(mixed)
    assert p_mixed.shape == (3,) and np.all((p_mixed >= 0) & (p_mixed <= 1))
    assert detector.predict(np.zeros((0, size, size, 3), np.uint8)).shape == (0,)


@pytest.mark.slow
@pytest.mark.parametrize("card_id", CARD_IDS)
def test_every_layer_is_named(card_id, detectors):
    first = [layer.name for layer in detectors[card_id].model.layers]
    assert [name for name in first if _AUTO_NAME.match(name)] == []
    # Keras numbers automatic names per process ("conv2d_7"), so an unnamed layer would differ
    # between two builds; named ones (and the backbone's own names) stay the same.
    again = [layer.name for layer in models.build_model(detectors[card_id].card).layers]
    assert again == first


@pytest.mark.parametrize("card_id", CARD_IDS)
def test_card_json_round_trips(card_id):
    card = models.get_card(card_id)
    data = card.to_dict()
    families = {name: arch.family for name, arch in models.ARCHITECTURES.items()}
    again = card_from_dict(json.loads(json.dumps(data)), "round trip", families)
    assert again == card
    assert again.to_dict() == data
    if card.source is not None and card.source.parent == SHIPPED_CARDS_DIR:
        assert json.loads(card.source.read_text(encoding="utf-8")) == data


@pytest.mark.parametrize("card_id", CARD_IDS)
def test_card_is_consistent_with_its_architecture(card_id):
    card = models.get_card(card_id)
    arch = models.ARCHITECTURES[card.architecture]
    assert card.family == arch.family and arch.accepts(card.input_size)
    assert card.band[0] <= card.threshold <= card.band[1]


def test_unknown_id_lists_the_valid_ones():
    with pytest.raises(UnknownModelError) as caught:
        models.get_card("meso5.df")
    message = str(caught.value)
    assert "meso5.df" in message and "\n" not in message
    for card_id in CARD_IDS:
        assert card_id in message


def test_unknown_id_fails_in_load_model_too():
    with pytest.raises(UnknownModelError, match="must be one of"):
        models.load_model("nope.nothing")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            names.add(str(node.args[0].value))
    return names


def test_core_and_models_never_import_streamlit():
    files = sorted((PROJECT_ROOT / "core").rglob("*.py")) + sorted((PROJECT_ROOT / "models").rglob("*.py"))
    assert len(files) >= 8
    offenders = [
        str(path.relative_to(PROJECT_ROOT))
        for path in files
        if any(name == "streamlit" or name.startswith("streamlit.") for name in _imported_modules(path))
    ]
    assert offenders == []


def test_the_import_checker_sees_streamlit(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from streamlit import session_state\n", encoding="utf-8")
    assert "streamlit" in _imported_modules(sample)


def test_listing_models_and_checking_weights_does_not_import_keras():
    code = (
        "import sys, models\n"
        "for card in models.list_models():\n"
        "    models.weights_status(card)\n"
        "models.default_model_ids()\n"
        "print('keras' in sys.modules, 'tensorflow' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip() == "False False"


def test_default_ids_name_one_card_per_family():
    ids = models.default_model_ids(get_settings())
    families = [models.get_card(card_id).family for card_id in ids]
    assert sorted(families) == ["mesonet", "xception"]
