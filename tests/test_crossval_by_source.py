"""Leave-one-source-out cross-validation, its report, and training from a cached Xception trunk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.__main__ import main
from core.data.datasets import collection_of, read_manifest
from core.evaluation.crossval import collection_names
from core.evaluation.crossval_report import crossfit, source_report
from core.training.networks import TrainError
from core.training.rows import select_rows
from core.training.spec import TrainSpec, resolve
from tests.test_train import user_cache, write_crop, write_manifest  # noqa: F401 — user_cache is a fixture

SOURCES = {"alpha": (3, 3), "beta": (3, 3), "gamma": (2, 4)}


def make_source_dataset(
    root: Path, sources: dict[str, tuple[int, int]] = SOURCES, size: int = 64, crops: int = 2
) -> Path:
    """A crop dataset whose clips sit in source folders (real/<source>/…): smooth real crops,
    high-frequency fake ones, so that even a tiny model learns them."""
    rng = np.random.default_rng(0)
    rows = []
    for source, (n_real, n_fake) in sources.items():
        for label, count in ((0, n_real), (1, n_fake)):
            name = "fake" if label else "real"
            for i in range(count):
                clip = f"{name}/{source}/{source}{i}.mp4"
                for f in range(crops):
                    rel = Path("fold0") / name / f"{source}{i}" / f"f{f:06d}_t0.png"
                    write_crop(root, rel, label, rng, size)
                    rows.append(
                        {
                            "path": rel.as_posix(),
                            "source": clip,
                            "kind": "clip",
                            "label": label,
                            "split": "fold0",
                            "group": f"{source}:{i}",
                            "frame_index": f,
                            "time_s": 0.0,
                            "track_id": 0,
                            "confidence": 1.0,
                        }
                    )
    return write_manifest(root, rows)


def test_collection_is_the_first_folder_under_the_label():
    assert collection_of("real/ffpp/000.mp4") == "ffpp"
    assert collection_of("fake/more-lipsync/x/y.mp4") == "more-lipsync"
    assert collection_of("real/000.mp4") == ""


def test_collection_names_refuse_loose_clips_unknown_sources_and_split_groups():
    rows = [
        {"source": "real/a/1.mp4", "collection": "a", "group": "g1"},
        {"source": "fake/b/2.mp4", "collection": "b", "group": "g2"},
    ]
    assert collection_names(rows, None) == (["a", "b"], ["a", "b"])
    assert collection_names(rows, ["b"]) == (["a", "b"], ["b"])
    with pytest.raises(TrainError, match="zeta"):
        collection_names(rows, ["zeta"])
    with pytest.raises(TrainError, match="directly in real/ or fake/"):
        collection_names(rows + [{"source": "real/3.mp4", "collection": "", "group": "g3"}], None)
    with pytest.raises(TrainError, match="keep a fake and its original together"):
        collection_names(rows + [{"source": "fake/a/9.mp4", "collection": "a", "group": "g2"}], None)


def test_excluded_collections_never_reach_training_or_validation(tmp_path):
    rows = read_manifest(make_source_dataset(tmp_path))
    spec = resolve(
        TrainSpec(
            arch="meso4",
            data=str(tmp_path),
            tag="t",
            train_splits=["fold0"],
            val_split="fold0",
            exclude_collections=["beta"],
        )
    )
    train, val = select_rows(rows, spec)
    assert train and val
    assert {r["collection"] for r in train} == {r["collection"] for r in val} == {"alpha", "gamma"}


@pytest.mark.slow
def test_by_source_scores_every_clip_once_with_a_model_that_never_saw_its_source(tmp_path, user_cache, capsys):
    data = make_source_dataset(tmp_path / "data")
    out = tmp_path / "cv"
    code = main(
        [
            "cross-validate",
            "--by-source",
            "--arch",
            "meso4",
            "--data",
            str(data),
            "--tag",
            "t",
            "--epochs",
            "3",
            "--batch",
            "8",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "per source: alpha" in printed and "band for a card" in printed
    result = json.loads((out / "crossval.json").read_text())
    rows = read_manifest(data)
    assert sorted(c["source"] for c in result["clips"]) == sorted({r["source"] for r in rows})
    for k, run in enumerate(result["runs"]):
        spec = json.loads((out / f"cv{k}" / "spec.json").read_text())
        held = run["fold"]
        assert spec["exclude_collections"] == [held] and spec["val_split"] == ""
        # What that model trained on, by the trainer's own row selection: nothing of its source.
        train, _ = select_rows(rows, resolve(TrainSpec(**{**spec, "out": None})))
        assert held not in {r["collection"] for r in train}
        assert {c["collection"] for c in result["clips"] if c["fold"] == held} == {held}
    assert set(result["per_source"]) == set(SOURCES)
    assert result["pooled"]["n_real"] + result["pooled"]["n_fake"] == len(result["clips"])
    assert result["calibration"] is None or result["calibration"]["a"] > 0
    lo, hi = result["band"]["band"]
    assert 0 <= lo <= 0.5 <= hi <= 1


def _clips(rng, sources=("a", "b", "c"), n=30, shift=1.5):
    clips = []
    for s in sources:
        for i in range(n):
            label = i % 2
            crop_p = 1 / (1 + np.exp(-(rng.normal(shift * (label - 0.5), 1.0, 4) + 2.0)))  # runs high
            clips.append(
                {
                    "source": f"{s}{i}",
                    "collection": s,
                    "label": label,
                    "crop_p": crop_p.tolist(),
                    "p_fake": float(crop_p.mean()),
                }
            )
    return clips


def test_source_report_calibrates_high_running_scores_and_states_its_band():
    clips = _clips(np.random.default_rng(0))
    report = source_report(clips)
    assert set(report["per_source"]) == {"a", "b", "c"}
    assert all(0.5 < v["auc"] <= 1 for v in report["per_source"].values())
    assert report["calibration"]["method"] == "platt" and report["calibration"]["a"] > 0
    fit = report["calibrated_crossfit"]
    # Raw scores all sit above 0.5; once calibrated (on the other sources) they are far better
    # calibrated than raw, measured on clips the calibration never saw.
    assert fit["n"] == len(clips) and fit["ece"] < report["pooled"]["ece"]
    assert 0 <= fit["uncertain_share"] <= 1


def test_crossfit_never_uses_the_scored_source(monkeypatch):
    import core.evaluation.crossval_report as cr

    seen = []
    real_fit = cr.fit_calibration_and_band

    def spy(clips, *args, **kwargs):
        seen.append({c["collection"] for c in clips})
        return real_fit(clips, *args, **kwargs)

    monkeypatch.setattr(cr, "fit_calibration_and_band", spy)
    crossfit(_clips(np.random.default_rng(1)))
    assert seen == [{"b", "c"}, {"a", "c"}, {"a", "b"}]


@pytest.mark.slow
def test_cached_trunk_training_trains_the_registry_network(tmp_path, user_cache):
    """Top blocks trained on cached trunk features: the saved card reproduces them (train's own
    reload check), and a second run reuses the cache instead of recomputing it."""
    import models
    from core.training.networks import build_architecture
    from core.training.trainer import run_training
    from core.training.trunk_cache import split_xception

    net = build_architecture("xception", 71)
    trunk, top = split_xception(net, 1)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 71, 71, 3)).astype("float32")
    np.testing.assert_allclose(top.predict_on_batch(trunk.predict_on_batch(x)), net.predict_on_batch(x), atol=1e-5)

    data = make_source_dataset(tmp_path / "data", {"alpha": (2, 2)}, crops=1)
    spec = TrainSpec(
        arch="xception",
        data=str(data),
        tag="cached",
        init="random",
        input_size=71,
        epochs=2,
        batch=4,
        cache_trunk=True,
        trainable_blocks=1,
        cache_variants=2,
        pseudo_fakes="add",
        roundtrip=True,
        val_split="",
        out=str(tmp_path / "run"),
    )
    result = run_training(spec)
    assert result.state == "succeeded"
    caches = list((data / "trunk-cache").iterdir())
    assert len(caches) == 1
    feats = np.load(caches[0] / "features.npy", mmap_mode="r")
    assert feats.shape[:2] == (4 + 2, 2)  # 4 crops + 2 pseudo-fakes, 2 variants each
    assert not np.array_equal(feats[0, 0], feats[0, 1])  # the variants differ
    log = (tmp_path / "run" / "train.log").read_text()
    assert "trunk cache" in log
    # A run without pseudo-fakes (an ablation) reads the same cache, leaving them out.
    again = run_training(
        TrainSpec(**{**spec.to_dict(), "tag": "cached2", "pseudo_fakes": "off", "out": str(tmp_path / "run2")})
    )
    assert again.state == "succeeded"
    log2 = (tmp_path / "run2" / "train.log").read_text()
    assert "trunk cache" not in log2  # reused, not rebuilt
    assert "(2, 2)" in log2  # 2 real and 2 fake items: no pseudo-fakes in this run
    assert models.get_card("xception.cached2").input_size == 71
