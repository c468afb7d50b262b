"""Training: spec, input pipeline, model set-up, float16 export, runs end to end (core.training.trainer*)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.__main__ import main
from core.data.datasets import MANIFEST_FIELDS, read_manifest
from core.settings import get_settings
from core.training.augment import format_roundtrip
from core.training.crops import CropDataset, item_weights, plan_items
from core.training.networks import TrainError
from core.training.rows import select_rows
from core.training.spec import TrainSpec, resolve, spec_from_dict
from core.training.trainer import run_training


@pytest.fixture
def user_cache(tmp_path, monkeypatch) -> Path:
    """A private user cache: runs, cards and weights of these tests never touch ~/.cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("DFI_CACHE_DIR", str(cache))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return cache


def write_crop(root: Path, rel: Path, label: int, rng: np.random.Generator, size: int = 64) -> None:
    """One learnable synthetic crop: smooth when real, with high-frequency noise when fake."""
    base = cv2.GaussianBlur(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), (0, 0), 6)
    image = base if label == 0 else np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(root / rel), image)


def write_manifest(root: Path, rows: list[dict]) -> Path:
    with (root / "manifest.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return root


def make_dataset(root: Path, per_split: dict[str, tuple[int, int]], size: int = 64) -> Path:
    """A hermetic crop dataset: smooth 'real' crops, high-frequency 'fake' ones (learnable)."""
    rng = np.random.default_rng(0)
    rows = []
    for split, (n_real, n_fake) in per_split.items():
        for label, count in ((0, n_real), (1, n_fake)):
            for i in range(count):
                rel = Path(split) / ("fake" if label else "real") / f"clip{i}" / "f000000_t0.png"
                write_crop(root, rel, label, rng, size)
                rows.append(
                    {
                        "path": rel.as_posix(),
                        "source": f"{split}/{label}/{i}.mp4",
                        "kind": "clip",
                        "label": label,
                        "split": split,
                        "group": f"{split}{label}{i}",
                        "frame_index": 0,
                        "time_s": 0.0,
                        "track_id": 0,
                        "confidence": 1.0,
                    }
                )
    return write_manifest(root, rows)


def test_spec_rejects_unknown_fields_and_missing_essentials():
    with pytest.raises(TrainError, match="epochz"):
        spec_from_dict({"arch": "meso4", "data": "d", "tag": "t", "epochz": 3})
    with pytest.raises(TrainError, match="tag"):
        spec_from_dict({"arch": "meso4", "data": "d"})


def test_resolve_fills_family_defaults():
    meso = resolve(TrainSpec(arch="meso4", data="d", tag="t"))
    assert (meso.batch, meso.lr, meso.loss, meso.init, meso.float16, meso.head_epochs) == (
        75,
        1e-3,
        "mse",
        "random",
        False,
        0,
    )
    xcep = resolve(TrainSpec(arch="xception", data="d", tag="t", epochs=8))
    assert (xcep.init, xcep.float16, xcep.loss, xcep.head_epochs, xcep.finetune_lr) == (
        "imagenet",
        True,
        "bce",
        2,
        1e-4,
    )
    assert resolve(TrainSpec(arch="xception", data="d", tag="t", init="random")).head_epochs == 0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"arch": "resnet"}, "architecture"),
        ({"tag": "Bad Tag"}, "tag"),
        ({"epochs": 0}, "epochs"),
        ({"balance": "maybe"}, "balance"),
        ({"band": [0.6, 0.7]}, "band"),
    ],
)
def test_resolve_rejects_bad_values(change, message):
    with pytest.raises(TrainError, match=message):
        resolve(TrainSpec(**{"arch": "meso4", "data": "d", "tag": "t", **change}))


def test_select_rows_needs_both_classes(tmp_path):
    rows = read_manifest(make_dataset(tmp_path, {"train": (3, 0), "val": (1, 1)}))
    with pytest.raises(TrainError, match="both real and fake"):
        select_rows(rows, TrainSpec(arch="meso4", data=str(tmp_path), tag="t"))
    train, val = select_rows(rows, TrainSpec(arch="meso4", data=str(tmp_path), tag="t", pseudo_fakes="only"))
    assert len(train) == 3 and len(val) == 2


def test_plan_items_pseudo_fake_modes():
    rows = [{"label": 0}, {"label": 0}, {"label": 1}]
    assert plan_items(rows, "off") == [(0, False), (1, False), (2, False)]
    assert plan_items(rows, "add") == [(0, False), (1, False), (2, False), (0, True), (1, True)]
    assert plan_items(rows, "only") == [(0, False), (1, False), (0, True), (1, True)]


def test_crop_dataset_batches_scale_and_balance(tmp_path):
    rows = read_manifest(make_dataset(tmp_path, {"train": (6, 2)}))
    unit = CropDataset(rows, 256, "unit", batch_size=4, training=True, augment=True, seed=1)
    x, y, w = unit[0]
    assert x.shape == (4, 256, 256, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == (4, 1) and w.shape == (4,)
    # Inverse-frequency weights: each class carries half of the total weight.
    real_w = {w for it, w in unit.item_weight.items() if unit.rows[it[0]]["label"] == 0}
    fake_w = {w for it, w in unit.item_weight.items() if unit.rows[it[0]]["label"] == 1}
    assert len(real_w) == len(fake_w) == 1
    assert real_w.pop() * 6 == pytest.approx(fake_w.pop() * 2)
    again = CropDataset(rows, 256, "unit", batch_size=4, training=True, augment=True, seed=1)
    np.testing.assert_array_equal(again[0][0], x)  # reproducible from the seed
    xcep = CropDataset(rows, 299, "xception", batch_size=8)
    xb = xcep[0][0]
    assert xb.shape == (8, 299, 299, 3) and -1 <= xb.min() < 0 < xb.max() <= 1
    sampled = CropDataset(rows, 64, "unit", batch_size=4, training=True, balance="sampling")
    labels = [sampled.rows[i]["label"] for i, _ in sampled.items]
    assert labels.count(0) == labels.count(1) == 6
    assert np.all(sampled[0][2] == 1)


def test_source_balance_stops_a_one_label_collection_from_carrying_its_label():
    # Collection "a" holds both labels (4 real, 4 fake); "b" holds 12 fakes only (a generator's demos).
    rows = (
        [{"label": 0, "collection": "a"}] * 4
        + [{"label": 1, "collection": "a"}] * 4
        + [{"label": 1, "collection": "b"}] * 12
    )
    items = plan_items(rows, "off")
    w = item_weights(rows, items, "sources")
    labels = np.array([r["label"] for r in rows])
    coll = np.array([r["collection"] for r in rows])
    assert w.mean() == pytest.approx(1.0)
    assert w[labels == 0].sum() == pytest.approx(w[labels == 1].sum())  # classes balanced
    # "b" holds 75 % of the fake crops but carries much less of the fake weight, and each of
    # its crops weighs less than one of "a"'s fakes (which come with their own real clips).
    fake_mass_b = w[coll == "b"].sum() / w[labels == 1].sum()
    assert fake_mass_b < 0.6
    assert w[coll == "b"].max() < w[(coll == "a") & (labels == 1)].min()
    # Plain class weights treat every fake alike, whatever its collection.
    plain = item_weights(rows, items, "weights")
    assert len(set(np.round(plain[labels == 1], 9))) == 1


def test_format_roundtrip_keeps_shape_and_changes_pixels():
    image = (np.random.default_rng(0).random((96, 80, 3)) * 255).astype(np.uint8)
    out = format_roundtrip(image, np.random.default_rng(1))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.array_equal(out, image)
    np.testing.assert_array_equal(format_roundtrip(image, np.random.default_rng(1)), out)
    thin = format_roundtrip(np.zeros((1, 40, 3), np.uint8), np.random.default_rng(2))
    assert thin.shape == (1, 40, 3)


def test_crop_dataset_pseudo_fakes_are_labelled_fake(tmp_path):
    rows = read_manifest(make_dataset(tmp_path, {"train": (4, 0)}))
    data = CropDataset(rows, 64, "unit", batch_size=8, training=True, pseudo_fakes="only", balance="none")
    _, y, _ = data[0]
    assert sorted(y.ravel().tolist()) == [0.0] * 4 + [1.0] * 4


def test_xception_phases_freeze_the_right_layers():
    import keras

    from core.training.networks import backbone_of, build_architecture, count_params, set_xception_phase

    net = build_architecture("xception")
    set_xception_phase(net, 1, trainable_blocks=4)
    assert count_params(net)[0] == 2049  # the head only: Dense(2048 -> 1)
    set_xception_phase(net, 2, trainable_blocks=2)
    backbone = backbone_of(net)
    trainable = {layer.name for layer in backbone.layers if layer.trainable and layer.weights}
    assert trainable and all(n.startswith(("block13_", "block14_")) for n in trainable)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) and layer.trainable for layer in backbone.layers)


def test_imagenet_init_fails_clearly_when_the_file_is_absent(user_cache):
    from core.training.networks import build_architecture, initialise

    with pytest.raises(TrainError, match="Keras cache"):
        initialise(build_architecture("xception"), "xception", "imagenet", get_settings())
    with pytest.raises(TrainError, match="only for Xception"):
        initialise(build_architecture("meso4"), "meso4", "imagenet", get_settings())


def test_float16_copy_loads_into_float32(tmp_path):
    from core.training.networks import build_architecture, write_float16_copy

    net = build_architecture("meso4")
    x = np.random.default_rng(0).random((2, 256, 256, 3)).astype("float32")
    net.save_weights(str(tmp_path / "a.weights.h5"))
    write_float16_copy(tmp_path / "a.weights.h5", tmp_path / "b.weights.h5")
    other = build_architecture("meso4")
    other.load_weights(str(tmp_path / "b.weights.h5"))
    assert all(str(v.dtype) == "float32" for v in other.weights)
    np.testing.assert_allclose(np.asarray(other(x, training=False)), np.asarray(net(x, training=False)), atol=2e-3)
    assert (tmp_path / "b.weights.h5").stat().st_size < (tmp_path / "a.weights.h5").stat().st_size


@pytest.mark.shared
def test_init_from_a_p_real_card_gives_p_fake(mesonet_weights_dir, monkeypatch, user_cache):
    """The authors' Meso4 outputs P(real); started from it, the training net outputs P(fake)."""
    import models
    from core.training.networks import build_architecture, initialise

    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(mesonet_weights_dir))
    settings = get_settings()
    net = build_architecture("meso4")
    initialise(net, "meso4", "meso4.df", settings)
    x = np.random.default_rng(0).integers(0, 256, (3, 256, 256, 3), dtype=np.uint8)
    p_fake = models.load_model("meso4.df", settings).predict(x)
    ours = np.asarray(net(x.astype("float32") / 255.0, training=False)).ravel()
    np.testing.assert_allclose(ours, p_fake, atol=1e-5)


@pytest.mark.slow
def test_training_run_end_to_end_on_synthetic_crops(tmp_path, user_cache):
    import models

    data = make_dataset(tmp_path / "data", {"train": (8, 8), "val": (3, 3)})
    spec = TrainSpec(
        arch="meso4", data=str(data), tag="synthetic", epochs=2, batch=8, steps_per_epoch=3, out=str(tmp_path / "run")
    )
    result = run_training(spec)
    assert result.state == "succeeded" and result.card_id == "meso4.synthetic"
    run = Path(result.run_dir)
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "succeeded" and status["epoch"] == 2
    epochs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert {"loss", "accuracy", "auc", "val_loss", "val_accuracy", "val_auc"} <= set(epochs[0])
    assert (run / "best.weights.h5").is_file() and (run / "spec.json").is_file()
    card = models.get_card("meso4.synthetic")
    assert card.output == "p_fake" and card.metrics["protocol"].startswith("crop-level")
    assert Path(card.source).parent == user_cache / "cards"
    scores = models.load_model("meso4.synthetic").predict(np.zeros((2, 64, 64, 3), np.uint8))
    assert scores.shape == (2,) and np.all((0 <= scores) & (scores <= 1))


@pytest.mark.slow
def test_training_run_can_be_cancelled(tmp_path, user_cache):
    data = make_dataset(tmp_path / "data", {"train": (4, 4)})
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "cancel").touch()
    result = run_training(
        TrainSpec(arch="meso4", data=str(data), tag="cancelled", epochs=3, batch=4, out=str(tmp_path / "run"))
    )
    assert result.state == "cancelled" and result.card_id is None
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "cancelled"
    assert not (user_cache / "cards" / "meso4.cancelled.json").exists()


def test_train_command_refuses_a_missing_dataset(tmp_path, user_cache, capsys):
    code = main(
        ["train", "--arch", "meso4", "--data", str(tmp_path / "none"), "--tag", "x", "--out", str(tmp_path / "run")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "manifest.csv" in err[0]
    assert json.loads((tmp_path / "run" / "status.json").read_text())["state"] == "failed"


@pytest.mark.slow
@pytest.mark.shared
def test_train_two_epochs_on_shared_crops(shared_data, tmp_path, user_cache, capsys):
    """The issue's check: 2 epochs of Meso4 on ../shared/data/crops on CPU; loss goes down; the
    card and weights it writes load through the registry and score the crops."""
    import models

    data = tmp_path / "crops"
    assert main(["extract-faces", str(shared_data / "crops"), str(data), "--split", "1,0,0", "--no-progress"]) == 0
    code = main(
        [
            "train",
            "--arch",
            "meso4",
            "--data",
            str(data),
            "--tag",
            "shared_test",
            "--epochs",
            "2",
            "--batch",
            "11",
            "--steps-per-epoch",
            "6",
            "--no-augment",
            "--val-split",
            "",
            "--out",
            str(tmp_path / "run"),
            "--progress",
            "none",
        ]
    )
    assert code == 0, capsys.readouterr().err
    epochs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert epochs[1]["loss"] < epochs[0]["loss"]
    detector = models.load_model("meso4.shared_test")
    crops = [
        cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted((shared_data / "crops").rglob("*.png"))
    ]
    scores = detector.predict(crops)
    assert scores.shape == (22,) and np.all((0 <= scores) & (scores <= 1))


def test_xception_input_size_is_a_choice_mesonet_is_fixed():
    assert resolve(TrainSpec(arch="xception", data="d", tag="t")).input_size == 299
    assert resolve(TrainSpec(arch="xception", data="d", tag="t", input_size=128)).input_size == 128
    assert resolve(TrainSpec(arch="meso4", data="d", tag="t")).input_size == 256
    with pytest.raises(TrainError, match="only 256"):
        resolve(TrainSpec(arch="meso4", data="d", tag="t", input_size=128))
    with pytest.raises(TrainError, match="71 to 1024"):
        resolve(TrainSpec(arch="xception", data="d", tag="t", input_size=64))


def test_fine_tuning_from_a_card_keeps_its_input_size(tmp_path, monkeypatch):
    monkeypatch.setenv("DFI_PROJECT_WEIGHTS_DIR", str(tmp_path / "none"))  # sizes come from the card alone
    assert resolve(TrainSpec(arch="xception", data="d", tag="t", init="xception.dfi2")).input_size == 160
    assert (
        resolve(TrainSpec(arch="xception", data="d", tag="t", init="xception.dfi2", input_size=299)).input_size == 299
    )
    assert resolve(TrainSpec(arch="xception", data="d", tag="t", init="random")).input_size == 299
