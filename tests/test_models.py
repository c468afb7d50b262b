"""models/: reference outputs of the authors' weights, card validation, weights lookup, download."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

import models
from core.errors import DownloadError, WeightsHashError, WeightsMissingError
from core.settings import get_settings
from models.cards import SHIPPED_CARDS_DIR, CardError, read_card
from models.detector import preprocess_crops, resize_crop
from models.weights import sha256_of, weights_status

# shared/data/README.md: sigmoid outputs (= P(real)) of the authors' weights on their test images.
REFERENCE_P_REAL = {
    "meso4.df": (0.041, 0.049, 0.990, 0.998),
    "mesoinception4.df": (0.026, 0.001, 1.000, 1.000),
    "meso4.f2f": (0.831, 0.641, 0.881, 0.952),
    "mesoinception4.f2f": (0.999, 1.000, 1.000, 0.991),
}
TEST_IMAGES = ("df/df00204.jpg", "df/df01254.jpg", "real/real00240.jpg", "real/real00772.jpg")
FAMILIES = {name: arch.family for name, arch in models.ARCHITECTURES.items()}


def isolated_settings(tmp_path: Path, weights_dir: Path | None = None):
    """Settings whose every folder is under tmp_path (whatever DFI_* the environment sets)."""
    return get_settings(
        weights_dir=weights_dir,
        project_weights_dir=tmp_path / "project_weights",
        cache_dir=tmp_path / "cache",
        user_cards_dir=tmp_path / "cards",
    )


def write_user_card(settings, card_id: str, **changes) -> dict:
    """A copy of a shipped card (or of meso4.df under a new id) with ``changes``, as a user card."""
    source = SHIPPED_CARDS_DIR / f"{card_id}.json"
    data = json.loads((source if source.exists() else SHIPPED_CARDS_DIR / "meso4.df.json").read_text())
    data["id"] = card_id
    weights = changes.pop("weights", {})
    data.update(changes)
    data["weights"].update(weights)
    settings.user_cards_dir.mkdir(parents=True, exist_ok=True)
    (settings.user_cards_dir / f"{card_id}.json").write_text(json.dumps(data))
    return data


# --- the authors' weights reproduce their reference outputs ---------------------------------------


@pytest.mark.shared
@pytest.mark.parametrize("card_id", sorted(REFERENCE_P_REAL))
def test_authors_weights_reproduce_reference_outputs(card_id, shared_data, mesonet_weights_dir, tmp_path):
    import keras

    settings = isolated_settings(tmp_path, weights_dir=mesonet_weights_dir)
    detector = models.load_model(card_id, settings)
    # As the authors fed them: Keras' ImageDataGenerator loads RGB and resizes with load_img's
    # default nearest-neighbour interpolation (two images are 342 and 208 px, not 256).
    folder = shared_data / "mesonet" / "test_images"
    images = np.stack([np.asarray(keras.utils.load_img(folder / name, target_size=(256, 256))) for name in TEST_IMAGES])
    p_fake = detector.predict(images)
    expected = 1.0 - np.array(REFERENCE_P_REAL[card_id])
    assert np.abs(p_fake - expected).max() <= 0.01, (p_fake, expected)


@pytest.mark.shared
def test_load_model_is_cached_per_process(mesonet_weights_dir, tmp_path):
    settings = isolated_settings(tmp_path, weights_dir=mesonet_weights_dir)
    assert models.load_model("meso4.df", settings) is models.load_model("meso4.df", settings)


@pytest.mark.shared
def test_load_model_follows_an_edited_card_without_reloading(mesonet_weights_dir, tmp_path):
    settings = isolated_settings(tmp_path, weights_dir=mesonet_weights_dir)
    first = models.load_model("meso4.f2f", settings)
    write_user_card(settings, "meso4.f2f", threshold=0.6, band=[0.5, 0.7])
    second = models.load_model("meso4.f2f", settings)
    assert second.card.threshold == 0.6 and first.card.threshold == 0.5
    assert second.model is first.model


@pytest.mark.shared
def test_default_ids_prefer_the_best_present_card(mesonet_weights_dir, tmp_path):
    settings = isolated_settings(tmp_path, weights_dir=mesonet_weights_dir)
    assert models.default_model_ids(settings) == ["xception.dfi2", "mesoinception4.df"]
    only_f2f = tmp_path / "only_f2f"
    only_f2f.mkdir()
    shutil.copy(mesonet_weights_dir / "Meso4_F2F.h5", only_f2f)
    assert models.default_model_ids(isolated_settings(tmp_path, weights_dir=only_f2f))[1] == "meso4.f2f"


# --- detector -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weightless_meso4():
    return models.build_detector(models.get_card("meso4.df"), weights=False)


def test_predict_converts_p_real_and_takes_one_batch(weightless_meso4):
    rng = np.random.default_rng(1)
    crops = rng.integers(0, 256, (3, 256, 256, 3), dtype=np.uint8)
    raw = np.asarray(weightless_meso4.model(crops.astype(np.float32) / 255.0, training=False)).ravel()
    np.testing.assert_allclose(weightless_meso4.predict(crops), 1.0 - raw, atol=1e-6)
    assert weightless_meso4.predict([]).shape == (0,)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 3), np.float32),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((0, 10, 3), np.uint8),
    ],
)
def test_predict_refuses_crops_that_are_not_rgb_uint8(weightless_meso4, bad):
    with pytest.raises(ValueError, match="crop 0"):
        weightless_meso4.predict([bad])


def test_resize_uses_area_when_shrinking_and_linear_when_growing():
    rng = np.random.default_rng(2)
    big = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)
    small = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
    assert np.array_equal(resize_crop(big, 256), cv2.resize(big, (256, 256), interpolation=cv2.INTER_AREA))
    grown = cv2.resize(small, (256, 256), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(resize_crop(small, 256), grown)
    exact = big[:256, :256]
    assert resize_crop(exact, 256) is exact  # already the right size: no copy, no resampling


def test_preprocess_modes_scale_as_the_cards_say():
    pixels = np.array([[[[0, 255, 127]]]], np.uint8)
    unit = preprocess_crops(pixels, 8, "unit")
    xception = preprocess_crops([pixels[0]], 299, "xception")
    assert unit.shape == (1, 8, 8, 3) and unit.dtype == np.float32
    assert unit.min() == 0.0 and unit.max() == 1.0
    assert xception.shape == (1, 299, 299, 3)
    assert xception.min() == pytest.approx(-1.0) and xception.max() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown preprocess"):
        preprocess_crops(pixels, 8, "imagenet")


# --- cards ----------------------------------------------------------------------------------------


def _card_file(tmp_path: Path, card_id: str = "meso4.df", **changes) -> Path:
    data = json.loads((SHIPPED_CARDS_DIR / "meso4.df.json").read_text())
    data["id"] = card_id
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        elif key == "weights":
            data["weights"].update(value)
        else:
            data[key] = value
    path = tmp_path / f"{card_id}.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"threshold": None}, "missing field"),
        ({"architecture": "meso5", "id": "meso5.df"}, "architecture"),
        ({"family": "xception"}, "family"),
        ({"output": "logit"}, "output"),
        ({"preprocess": "imagenet"}, "preprocess"),
        ({"band": [0.6, 0.9]}, "threshold"),
        ({"band": [-0.1, 0.6]}, "band"),
        ({"weights": {"file": "../../etc/Meso4_DF.h5"}}, "plain file name"),
        ({"weights": {"file": "Meso4_DF.keras"}}, "weights-only"),
        ({"weights": {"sha256": "abc"}}, "sha256"),
        ({"weights": {"sha256": None}}, "note"),
        ({"weights": {"url": "ftp://example.org/x.h5"}}, "url"),
        ({"metrics": {"video_auc": 0.7}}, "protocol"),
    ],
)
def test_invalid_cards_are_refused_naming_the_file(tmp_path, changes, problem):
    path = _card_file(tmp_path, changes.pop("id", "meso4.df"), **changes)
    with pytest.raises(CardError) as caught:
        read_card(path, FAMILIES)
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_card_id_must_match_its_file_name(tmp_path):
    path = _card_file(tmp_path, "meso4.df")
    path = path.rename(tmp_path / "meso4.other.json")
    with pytest.raises(CardError, match="meso4.df.json"):
        read_card(path, FAMILIES)


def test_broken_json_names_the_file(tmp_path):
    path = tmp_path / "meso4.df.json"
    path.write_text("{not json")
    with pytest.raises(CardError, match="cannot be read") as caught:
        read_card(path, FAMILIES)
    assert str(path) in str(caught.value)


def test_user_cards_are_listed_and_override_shipped_ones(tmp_path):
    settings = isolated_settings(tmp_path)
    write_user_card(settings, "meso4.mine", display_name="My Meso4")
    write_user_card(settings, "meso4.df", threshold=0.6, band=[0.4, 0.8])
    cards = {card.id: card for card in models.list_models(settings)}
    assert cards["meso4.mine"].display_name == "My Meso4"
    assert cards["meso4.df"].threshold == 0.6 and cards["meso4.df"].source.parent == settings.user_cards_dir
    assert "meso4.mine" not in {card.id for card in models.list_models(isolated_settings(tmp_path / "other"))}


# --- weights lookup, hashes -----------------------------------------------------------------------


def _fake_weights_card(tmp_path: Path, content: bytes = b"weights-bytes"):
    card = models.get_card("meso4.df")
    spec = dataclasses.replace(card.weights, file="fake.h5", sha256=hashlib.sha256(content).hexdigest())
    return dataclasses.replace(card, weights=spec), content


def test_lookup_order_env_dir_then_project_then_cache(tmp_path, monkeypatch):
    card, content = _fake_weights_card(tmp_path)
    env_dir, project, cache = tmp_path / "env", tmp_path / "project_weights", tmp_path / "cache" / "weights"
    for folder in (env_dir, project, cache):
        folder.mkdir(parents=True)
        (folder / "fake.h5").write_bytes(content)
    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(env_dir))
    monkeypatch.setenv("DFI_PROJECT_WEIGHTS_DIR", str(project))
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    status = weights_status(card)  # default settings: read from the environment
    assert status.state == "present" and status.path == env_dir / "fake.h5"
    assert status.searched == [env_dir, project, cache]
    (env_dir / "fake.h5").unlink()
    assert weights_status(card).path == project / "fake.h5"
    (project / "fake.h5").unlink()
    assert weights_status(card).path == cache / "fake.h5"
    monkeypatch.delenv("DFI_WEIGHTS_DIR")
    assert weights_status(card).searched == [project, cache]


def test_missing_weights_name_every_folder_and_the_download(tmp_path):
    settings = isolated_settings(tmp_path, weights_dir=tmp_path / "env")
    status = models.weights_status(models.get_card("meso4.df"), settings)
    assert status.state == "missing" and status.path is None
    with pytest.raises(WeightsMissingError) as caught:
        models.load_model("meso4.df", settings)
    message = str(caught.value)
    for folder in settings.weights_search_path():
        assert str(folder) in message and str(folder) in status.message
    assert "Meso4_DF.h5" in message and "--download meso4.df" in message and "\n" not in message


def test_a_card_whose_weights_do_not_exist_yet_is_unavailable_with_its_note(tmp_path):
    settings = isolated_settings(tmp_path)
    note = "no weights are trained for this card yet; train them with `python -m core train`"
    write_user_card(
        settings,
        "xception.future",
        architecture="xception",
        family="xception",
        input_size=299,
        preprocess="xception",
        output="p_fake",
        weights={"file": "future.weights.h5", "sha256": None, "url": None, "note": note},
    )
    status = models.weights_status(models.get_card("xception.future", settings), settings)
    assert status.state == "missing"
    assert "no weights are trained for this card yet" in status.message
    assert "python -m core train" in status.message
    with pytest.raises(WeightsMissingError, match="no weights are trained for this card yet"):
        models.load_model("xception.future", settings)
    with pytest.raises(DownloadError, match="nothing to download"):
        models.download_weights("xception.future", settings)


def test_hash_mismatch_is_reported_and_refused(tmp_path):
    env = tmp_path / "env"
    env.mkdir()
    (env / "Meso4_DF.h5").write_bytes(b"not the authors' file")
    settings = isolated_settings(tmp_path, weights_dir=env)
    status = models.weights_status(models.get_card("meso4.df"), settings)
    assert status.state == "hash_mismatch" and status.path == env / "Meso4_DF.h5"
    with pytest.raises(WeightsHashError) as caught:
        models.load_model("meso4.df", settings)
    assert str(env / "Meso4_DF.h5") in str(caught.value) and "sha256" in str(caught.value)


def test_a_file_is_hashed_once_per_path_size_and_mtime(tmp_path):
    path = tmp_path / "w.h5"
    path.write_bytes(b"aaaa")
    first = sha256_of(path)
    stat = path.stat()
    path.write_bytes(b"bbbb")  # same size; put the old mtime back: the cached hash is reused
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert sha256_of(path) == first
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert sha256_of(path) == hashlib.sha256(b"bbbb").hexdigest()


def test_default_ids_fall_back_to_the_best_card_and_break_ties_by_id(tmp_path):
    settings = isolated_settings(tmp_path)
    assert models.default_model_ids(settings) == ["xception.dfi2", "mesoinception4.df"]
    content = b"tie weights"
    settings.project_weights_dir.mkdir(parents=True)
    (settings.project_weights_dir / "tie.h5").write_bytes(content)
    weights = {"file": "tie.h5", "sha256": hashlib.sha256(content).hexdigest()}
    metrics = {"video_auc": 0.9, "out_of_source": True, "protocol": "test"}
    for card_id in ("meso4.zz", "meso4.aa"):
        write_user_card(settings, card_id, weights=weights, metrics=metrics)
    assert models.default_model_ids(settings) == ["xception.dfi2", "meso4.aa"]


def test_default_prefers_a_card_measured_on_sources_it_never_saw(tmp_path):
    settings = isolated_settings(tmp_path)
    content = b"oos weights"
    settings.project_weights_dir.mkdir(parents=True)
    (settings.project_weights_dir / "oos.h5").write_bytes(content)
    weights = {"file": "oos.h5", "sha256": hashlib.sha256(content).hexdigest()}
    # A high AUC on held-out clips of the training sources loses to a lower one measured on
    # whole sources the model never saw: that is the figure a new user's clip meets.
    write_user_card(
        settings,
        "meso4.insource",
        weights=weights,
        metrics={"video_auc": 0.95, "protocol": "held-out clips of its own sources"},
    )
    write_user_card(
        settings,
        "meso4.oos",
        weights=weights,
        metrics={"video_auc": 0.71, "out_of_source": True, "protocol": "leave-one-source-out"},
    )
    assert models.default_model_ids(settings)[1] == "meso4.oos"


# --- explicit download ----------------------------------------------------------------------------


def _leftovers(settings) -> list[str]:
    folder = settings.cache_dir / "weights"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.shared
def test_download_streams_verifies_and_loads(http_folder, mesonet_weights_dir, tmp_path):
    folder, base = http_folder
    shutil.copy(mesonet_weights_dir / "Meso4_DF.h5", folder)
    settings = isolated_settings(tmp_path)
    write_user_card(settings, "meso4.df", weights={"url": f"{base}/Meso4_DF.h5"})
    seen = []
    path = models.download_weights("meso4.df", settings, progress=lambda *done_total: seen.append(done_total))
    assert path == settings.cache_dir / "weights" / "Meso4_DF.h5"
    assert sha256_of(path) == models.get_card("meso4.df").weights.sha256
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)
    assert _leftovers(settings) == ["Meso4_DF.h5"]
    assert models.download_weights("meso4.df", settings) == path  # present: nothing fetched again
    p = models.load_model("meso4.df", settings).predict(np.zeros((1, 64, 64, 3), np.uint8))
    assert p.shape == (1,)


def test_download_with_wrong_hash_leaves_nothing(http_folder, tmp_path):
    folder, base = http_folder
    (folder / "Meso4_DF.h5").write_bytes(b"something else entirely")
    settings = isolated_settings(tmp_path)
    write_user_card(settings, "meso4.df", weights={"url": f"{base}/Meso4_DF.h5"})
    with pytest.raises(DownloadError, match="sha256") as caught:
        models.download_weights("meso4.df", settings)
    assert "\n" not in str(caught.value)
    assert _leftovers(settings) == []
    assert models.weights_status(models.get_card("meso4.df", settings), settings).state == "missing"


def test_download_http_error_is_plain(http_folder, tmp_path):
    _, base = http_folder
    settings = isolated_settings(tmp_path)
    write_user_card(settings, "meso4.df", weights={"url": f"{base}/absent.h5"})
    with pytest.raises(DownloadError, match="HTTP 404"):
        models.download_weights("meso4.df", settings)
    assert _leftovers(settings) == []


def test_download_refused_connection_is_plain(tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = isolated_settings(tmp_path)
    write_user_card(settings, "meso4.df", weights={"url": f"http://127.0.0.1:{port}/Meso4_DF.h5"})
    with pytest.raises(DownloadError, match="cannot connect") as caught:
        models.download_weights("meso4.df", settings)
    assert "\n" not in str(caught.value) and "Traceback" not in str(caught.value)
    assert _leftovers(settings) == []


def test_xception_card_may_use_a_smaller_input_and_builds_at_it(tmp_path, monkeypatch):
    import models

    card = json.loads((models.SHIPPED_CARDS_DIR / "xception.dfi2.json").read_text())
    card.update(id="xception.small", input_size=128)
    (tmp_path / "xception.small.json").write_text(json.dumps(card))
    monkeypatch.setenv("DFI_USER_CARDS_DIR", str(tmp_path))
    small = models.get_card("xception.small")
    assert small.input_size == 128
    assert models.build_model(small).input_shape == (None, 128, 128, 3)
    meso = json.loads((models.SHIPPED_CARDS_DIR / "meso4.df.json").read_text())
    meso.update(id="meso4.small", input_size=128)
    (tmp_path / "meso4.small.json").write_text(json.dumps(meso))
    with pytest.raises(models.CardError, match="meso4 takes 256px input, not 128"):
        models.list_models()
