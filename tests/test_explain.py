"""Heatmaps (core/engine/explain.py): sanity checks in the spirit of Adebayo et al. (NeurIPS 2018), the
map contract for every registered architecture, awkward crops, and one batched pass per call.

(a) a model whose output depends only on the left half of its input gets >= 80 % of the map's mass
there; (b) re-initialising the last convolution of a trained detector changes its maps (Spearman
rank correlation below 0.5); (c) for every architecture, with random weights, maps are finite,
in [0, 1] and crop-sized, and the pass explains the network's own p_fake.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import skimage.data
from scipy.stats import spearmanr

import models
from core.engine import explain
from models.detector import Detector

RNG = np.random.default_rng(7)


def face_crops(n: int = 4) -> list[np.ndarray]:
    """Square crops around the astronaut's face (a real photo), slightly shifted and scaled."""
    image = skimage.data.astronaut()
    crops = []
    for i in range(n):
        half = 90 + 5 * i
        x, y = 223 + 4 * i, 118 - 3 * i
        crops.append(np.ascontiguousarray(image[y - half : y + half, x - half : x + half]))
    return crops


def awkward_crops(size: int) -> list[np.ndarray]:
    """What the analyzer can hand over: tiny, thin, non-square, grey, black, native-sized."""
    shapes = [(1, 1), (1, 300), (300, 1), (2, 57), (40, 40), (500, 380), (size, size)]
    crops = [RNG.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]
    crops.append(np.full((128, 128, 3), 128, np.uint8))  # grey
    crops.append(np.zeros((64, 64, 3), np.uint8))  # black
    return crops


def raw_p_fake(detector: Detector, crops) -> np.ndarray:
    """The network's own p_fake, before any card calibration (what the maps explain)."""
    raw = getattr(detector, "predict_raw", None)
    if raw is not None:
        return raw(crops)
    p = np.asarray(detector.model.predict_on_batch(detector.preprocess(crops)), np.float64).reshape(-1)
    return 1.0 - p if detector.card.output == "p_real" else p


def left_half_detector() -> Detector:
    """A 32 px model that sees only the left half of its input: the right half is cropped away
    and padded back with zeros before the first convolution."""
    inputs = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Cropping2D(((0, 0), (0, 16)), name="keep_left")(inputs)
    x = keras.layers.ZeroPadding2D(((0, 0), (0, 16)), name="pad_right")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="score")(x)
    model = keras.Model(inputs, outputs, name="left_half")
    model.get_layer("score").set_weights([np.ones((8, 1), np.float32), np.zeros(1, np.float32)])
    card = dataclasses.replace(models.get_card("meso4.dfi2"), id="test.left", input_size=32, output="p_fake")
    return Detector(card, model)


def test_a_model_that_sees_only_the_left_half_is_explained_by_the_left_half():
    detector = left_half_detector()
    crops = [RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(6)]
    maps = explain.explain(detector, crops)
    assert explain.target_layer(detector) == "conv"
    for heat in maps:
        assert heat.shape == (64, 64) and heat.max() > 0.5
        left = heat[:, :32].sum() / heat.sum()
        assert left >= 0.8, f"only {left:.0%} of the map's mass is in the left half"


def test_reinitialising_the_last_convolution_changes_the_maps():
    """meso4.dfi2 (shipped weights) on real face crops, then with stage4_conv re-initialised."""
    trained = models.load_model("meso4.dfi2")
    crops = face_crops()
    before = explain.explain(trained, crops)
    model = models.build_model(trained.card)
    model.set_weights(trained.model.get_weights())
    conv = model.get_layer(explain.target_layer(trained))
    kernel, bias = conv.get_weights()
    fresh = keras.initializers.GlorotUniform(seed=3)(kernel.shape)
    conv.set_weights([keras.ops.convert_to_numpy(fresh), np.zeros_like(bias)])
    after = explain.explain(Detector(trained.card, model), crops)
    rhos = []
    for a, b in zip(before, after):
        if explain.is_flat(a) or explain.is_flat(b):
            rhos.append(0.0)  # a map that vanished is as changed as it gets
            continue
        rhos.append(spearmanr(a.ravel(), b.ravel()).statistic)
    assert np.nanmax(rhos) < 0.5, f"rank correlations {np.round(rhos, 2)}"


@pytest.fixture(scope="module")
def random_detectors():
    """One random-weights detector per registered architecture (its first card)."""
    # Seeded: an unlucky random ReLU network can have a dead gradient on one crop, which would
    # make the "not flat" check below fail by chance rather than by a bug.
    keras.utils.set_random_seed(0)
    out = {}
    for name in models.ARCHITECTURES:
        card = next(c for c in models.list_models() if c.architecture == name)
        out[name] = models.build_detector(card, weights=False)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("architecture", list(models.ARCHITECTURES))
def test_maps_are_finite_in_unit_range_and_crop_sized(architecture, random_detectors):
    detector = random_detectors[architecture]
    crops = awkward_crops(detector.card.input_size)
    maps = explain.explain(detector, crops)
    assert len(maps) == len(crops)
    for crop, heat in zip(crops, maps):
        assert heat.dtype == np.float32 and heat.shape == crop.shape[:2]
        assert np.all(np.isfinite(heat)) and heat.min() >= 0.0 and heat.max() <= 1.0
        shown = explain.overlay(crop, heat)
        assert shown.dtype == np.uint8 and shown.shape == crop.shape
    # A grey crop: a flat map is still an image (the crop, evenly tinted), never NaN or blank.
    grey = explain.overlay(crops[-2], np.zeros((128, 128), np.float32))
    assert grey.shape == (128, 128, 3) and len(np.unique(grey.reshape(-1, 3), axis=0)) == 1
    assert explain.is_flat(np.zeros((3, 3))) and not explain.is_flat(maps[4])
    # The pass explains the network's own p_fake (before calibration; p_real cards turned round).
    _, p_fake = explain.explain_batch(detector, detector.preprocess(crops))
    np.testing.assert_allclose(p_fake, raw_p_fake(detector, crops), atol=1e-5)
    assert explain.explain(detector, []) == []


def test_one_batched_pass_per_call_and_shipped_target_layers(random_detectors, monkeypatch):
    detector = random_detectors["xception"]
    assert explain.target_layer(detector) == "block14_sepconv2_act"
    assert explain.target_layer(random_detectors["meso4"]) == "stage4_conv"
    assert explain.target_layer(random_detectors["mesoinception4"]) == "stage4_conv"
    held = explain._explainers[detector.model]
    calls = []

    def counted(batch):
        calls.append(batch.shape[0])
        return held.run(batch)

    monkeypatch.setitem(explain._explainers, detector.model, dataclasses.replace(held, run=counted))
    explain.explain(detector, [RNG.integers(0, 256, (90, 90, 3), dtype=np.uint8) for _ in range(5)])
    assert calls == [5]


def test_overlay_resizes_a_smaller_map_and_ignores_nan():
    crop = RNG.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    heat = np.array([[0.0, np.nan], [1.0, 0.5]], np.float32)
    shown = explain.overlay(crop, heat)
    assert shown.shape == (50, 70, 3) and shown.dtype == np.uint8


def hand_report(images):
    """A report of ``images`` (one person), scored by meso4.dfi2; xception.dfi2 unavailable."""
    from core.types import (
        Box,
        ClipInfo,
        ClipReport,
        Face,
        FaceCrop,
        FrameScore,
        ModelResult,
        Sampling,
        Timings,
        Verdict,
    )

    faces = [Face(i, i / 10, Box(10, 10, 50, 50), 0.99, 0) for i in range(len(images))]
    scores = tuple(FrameScore(f.frame_index, f.time_s, 0, 0.5) for f in faces)
    result = ModelResult(
        "meso4.dfi2", "mesonet", "Meso4", 0.5, Verdict.UNCERTAIN, 0.5, (0.35, 0.65), "mean", 0.1, frames=scores
    )
    missing = ModelResult(
        "xception.dfi2",
        "xception",
        "Xception",
        None,
        Verdict.UNAVAILABLE,
        0.5,
        (0.35, 0.75),
        "mean",
        0.0,
        message="no weights",
    )
    return ClipReport(
        "ok",
        ClipInfo("c.mp4", "0" * 64, 640, 480, 10.0, 40, 4.0),
        Sampling(4, tuple(range(4)), tuple(f.time_s for f in faces)),
        tuple(faces),
        (result, missing),
        Timings(),
        {},
        crops=tuple(FaceCrop(f, im) for f, im in zip(faces, images)),
    )


def test_report_files_zip_and_index_name_every_crop_and_detector(tmp_path):
    """explain_report on a report's own crops, then the files, the index and the zip."""
    import json
    import zipfile

    from core.engine import explain_export

    detector = models.load_model("meso4.dfi2")
    images = face_crops(3) + [np.full((1, 40, 3), 90, np.uint8)]  # and a 1-pixel-thin grey one
    report = hand_report(images)
    explanations = explain_export.explain_report(report, {"meso4.dfi2": detector})
    assert [e.id for e in explanations] == ["meso4.dfi2"]  # the unavailable model is skipped
    assert [m.shape for m in explanations[0].heatmaps] == [im.shape[:2] for im in images]

    written = explain_export.write_explanations(report, explanations, tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == sorted(
        [f"{i:03d}_crop.png" for i in range(4)]
        + [f"{i:03d}_meso4.dfi2.png" for i in range(4)]
        + ["index.html", "index.json"]
    )
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    assert index["schema"] == "dfi.explain/1" and index["models"][0]["target_layer"] == "stage4_conv"
    assert index["crops"][3]["size"] == [1, 40] and index["crops"][0]["overlays"]["meso4.dfi2"]["p_fake"] == 0.5
    assert "not proof" in (tmp_path / "out" / "index.html").read_text()
    with zipfile.ZipFile(__import__("io").BytesIO(explain_export.explanations_zip(report, explanations))) as z:
        assert sorted(z.namelist()) == names
    assert explain_export.safe_name("my weights/v2") == "my_weights_v2"


def test_gallery_shows_each_crop_beside_one_heatmap_per_detector():
    pytest.importorskip("streamlit")
    from views.analyze.gallery import gallery_html, thumbnail_data_uri

    report = hand_report(face_crops(2) + [np.full((1, 40, 3), 90, np.uint8)])
    plain = gallery_html(report)
    assert 'class="dfi-heat-img"' not in plain
    thumbs = [thumbnail_data_uri(explain.overlay(c.image, np.zeros(c.image.shape[:2]))) for c in report.crops]
    page = gallery_html(report, {"meso4.dfi2": thumbs})
    assert page.count('class="dfi-crop-img"') == 3
    assert page.count('class="dfi-heat-img" data-model="meso4.dfi2"') == 3
    assert "where MesoNet looked" in page
