"""Adding the user's own weights (models/user_weights.py): checked by loading, installed with a card.

Hermetic tests make small Keras 3 weight files from freshly built MesoNets; the tests marked
``shared`` use the MesoNet authors' legacy Keras 2 files from ../shared/data.
"""

from __future__ import annotations

import tempfile

import h5py
import numpy as np
import pytest

import models
from core.hashing import file_sha256
from core.settings import get_settings
from models.networks.mesonet import build_meso4
from models.user_weights import UserWeightsError, check_weights, install_user_weights

CARD = dict(display_name="My Meso4", output="p_fake", license="MIT", trained_on="my clips")


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DFI_PROJECT_WEIGHTS_DIR", str(tmp_path / "no-project-weights"))
    monkeypatch.delenv("DFI_WEIGHTS_DIR", raising=False)
    # Every temp file the module makes lands here, so the tests can see that none is left behind.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    return get_settings()


def leftovers(settings) -> list:
    return list((settings.cache_dir.parent / "tmp").iterdir())


@pytest.fixture(scope="module")
def meso4_keras3(tmp_path_factory):
    """(bytes of a Keras 3 .weights.h5 for a random Meso4, that model)."""
    model = build_meso4()
    path = tmp_path_factory.mktemp("k3") / "meso4.weights.h5"
    model.save_weights(str(path))
    return path.read_bytes(), model


def test_a_keras3_file_fits_its_architecture(settings, meso4_keras3):
    data, _ = meso4_keras3
    check = check_weights(data, "meso4", settings)
    assert (check.format, check.suffix, check.size_bytes) == ("keras3", ".weights.h5", len(data))
    assert leftovers(settings) == []


def test_a_file_of_another_architecture_is_refused_plainly(settings, meso4_keras3):
    with pytest.raises(UserWeightsError, match="do not fit the MesoInception4 architecture") as err:
        check_weights(meso4_keras3[0], "mesoinception4", settings)
    assert "\n" not in err.value.message
    assert leftovers(settings) == []


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "the file is empty"),
        (b"\x89PNG not weights at all" * 10, "not HDF5 data"),
    ],
)
def test_files_that_are_not_weights_are_refused(settings, data, words):
    with pytest.raises(UserWeightsError, match=words):
        check_weights(data, "meso4", settings)


def test_hdf5_without_keras_weights_is_refused(settings, tmp_path):
    path = tmp_path / "table.h5"
    with h5py.File(path, "w") as f:
        f["numbers"] = np.arange(10)
    with pytest.raises(UserWeightsError, match="holds no Keras weights"):
        check_weights(path.read_bytes(), "meso4", settings)


def test_size_limit_and_unknown_architecture(settings, meso4_keras3):
    small = get_settings(max_weights_upload_mb=0)
    with pytest.raises(UserWeightsError, match="the limit is 0 MB"):
        check_weights(meso4_keras3[0], "meso4", small)
    with pytest.raises(UserWeightsError, match="unknown architecture 'resnet'"):
        check_weights(meso4_keras3[0], "resnet", settings)


def test_weights_that_give_no_score_are_refused(settings, tmp_path):
    model = build_meso4()
    model.set_weights([np.full(w.shape, np.nan, w.dtype) for w in model.get_weights()])
    path = tmp_path / "nan.weights.h5"
    model.save_weights(str(path))
    with pytest.raises(UserWeightsError, match="gives no usable score"):
        check_weights(path.read_bytes(), "meso4", settings)


def test_install_writes_weights_and_card_and_the_model_loads(settings, meso4_keras3):
    data, original = meso4_keras3
    card = install_user_weights(data, "meso4", "mine", **CARD, source_name="upload.weights.h5", settings=settings)
    assert card.id == "meso4.mine" and card.family == "mesonet" and card.input_size == 256
    assert card.preprocess == "unit" and card.metrics == {}
    path = settings.cache_dir / "weights" / "meso4_mine.weights.h5"
    assert card.weights.file == path.name and card.weights.sha256 == file_sha256(path)
    assert card.source == settings.user_cards_dir / "meso4.mine.json"
    assert models.weights_status(card, settings).ok
    assert "meso4.mine" in [c.id for c in models.list_models(settings)]
    crops = np.random.default_rng(0).integers(0, 255, (2, 256, 256, 3), dtype=np.uint8)
    expected = original.predict_on_batch(crops.astype(np.float32) / 255.0).ravel()
    got = models.load_model("meso4.mine", settings).predict(crops)
    assert got == pytest.approx(expected, abs=1e-5)
    assert not list((settings.cache_dir / "weights").glob(".*")) and leftovers(settings) == []


@pytest.mark.parametrize(
    "change, words",
    [
        (dict(tag="df"), "a model called meso4.df already exists"),
        (dict(tag="Bad Name"), "the short name must be"),
        (dict(license="  "), "please fill in the licence"),
        (dict(output="p_maybe"), "the output must be one of"),
    ],
)
def test_install_refuses_bad_details_before_writing_anything(settings, meso4_keras3, change, words):
    details = dict(tag="mine", **CARD) | change
    with pytest.raises(UserWeightsError, match=words):
        install_user_weights(meso4_keras3[0], "meso4", settings=settings, **details)
    assert not (settings.cache_dir / "weights").exists() and not settings.user_cards_dir.exists()


def test_install_refuses_a_file_name_already_on_the_search_path(settings, meso4_keras3, tmp_path, monkeypatch):
    earlier = tmp_path / "env-weights"
    earlier.mkdir()
    (earlier / "meso4_mine.weights.h5").write_bytes(b"someone else's file")
    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(earlier))
    with pytest.raises(UserWeightsError, match="already exists"):
        install_user_weights(meso4_keras3[0], "meso4", "mine", **CARD, settings=get_settings())


@pytest.mark.shared
def test_the_authors_legacy_file_installs_as_h5_and_scores_like_the_shipped_card(
    settings, mesonet_weights_dir, shared_data, monkeypatch
):
    data = (mesonet_weights_dir / "Meso4_DF.h5").read_bytes()
    with pytest.raises(UserWeightsError, match="do not fit the MesoInception4"):
        check_weights(data, "mesoinception4", settings)
    card = install_user_weights(
        data, "meso4", "authors", "Meso4 again", "p_real", "Apache-2.0", "the DF set", settings=settings
    )
    assert card.weights.file == "meso4_authors.h5"  # legacy format keeps the suffix Keras loads it by
    assert card.weights.sha256 == models.get_card("meso4.df", settings).weights.sha256
    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(mesonet_weights_dir))
    both = get_settings()
    from PIL import Image

    crops = np.stack(
        [
            np.asarray(Image.open(p).convert("RGB").resize((256, 256)))
            for p in sorted((shared_data / "crops").rglob("*.png"))[:4]
        ]
    )
    mine = models.load_model("meso4.authors", both).predict(crops)
    shipped = models.load_model("meso4.df", both).predict(crops)
    assert mine == pytest.approx(shipped, abs=1e-6)
