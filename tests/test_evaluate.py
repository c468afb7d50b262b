"""Metrics against hand-computed values (core.evaluation.metrics) and evaluation end to end (core.evaluation.evaluate)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from core.__main__ import main
from core.evaluation.evaluate import EvaluationError, find_clips, restrict_to_split
from core.evaluation.metrics import binary_metrics, equal_error_rate, roc_points
from core.scan.evaluate import evaluate
from tests import clipgen

# --- metrics -----------------------------------------------------------------------------------


def test_metrics_hand_computed_example():
    # Pairs (real, fake): (0.1, 0.4) ok, (0.1, 0.9) ok, (0.6, 0.4) wrong, (0.6, 0.9) ok -> AUC 3/4.
    m = binary_metrics([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], threshold=0.5)
    assert m["auc"] == pytest.approx(0.75)
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["confusion"] == {"tn": 1, "fp": 1, "fn": 1, "tp": 1}
    # -(ln 0.9 + ln 0.4 + ln 0.4 + ln 0.9) / 4
    assert m["log_loss"] == pytest.approx(-(2 * math.log(0.9) + 2 * math.log(0.4)) / 4)
    assert m["eer"] == pytest.approx(0.5)
    assert (m["n"], m["n_real"], m["n_fake"]) == (4, 2, 2)


def test_eer_interpolates_where_the_error_rates_cross():
    # Thresholds 0.9: fpr 0, fnr 1/2; 0.6: fpr 1/3, fnr 1/2; 0.5: fpr 1/3, fnr 0.
    # fnr falls from 1/2 to 0 while fpr stays 1/3: they meet at 1/3.
    assert equal_error_rate([0, 0, 0, 1, 1], [0.1, 0.2, 0.6, 0.5, 0.9]) == pytest.approx(1 / 3)
    assert equal_error_rate([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == pytest.approx(0.0)


def test_threshold_is_inclusive_and_perfect_separation():
    m = binary_metrics([0, 1], [0.2, 0.5], threshold=0.5)
    assert m["confusion"]["tp"] == 1 and m["accuracy"] == 1.0 and m["auc"] == 1.0


def test_single_class_gives_none_not_nan():
    m = binary_metrics([1, 1, 1], [0.2, 0.7, 0.9])
    assert m["auc"] is None and m["eer"] is None and m["balanced_accuracy"] is None
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert roc_points([1, 1], [0.3, 0.4]) is None
    empty = binary_metrics([], [])
    assert empty["n"] == 0 and empty["accuracy"] is None and empty["log_loss"] is None


def test_confident_mistakes_have_a_finite_log_loss():
    m = binary_metrics([0, 1], [1.0, 0.0])
    assert math.isfinite(m["log_loss"]) and m["log_loss"] > 10


def test_roc_points_are_json_ready():
    roc = roc_points([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9])
    json.dumps(roc, allow_nan=False)
    assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1 and roc["thresholds"][0] > 1


@pytest.mark.parametrize(
    "labels, scores", [([0, 2], [0.1, 0.2]), ([0, 1], [0.1, 1.5]), ([0, 1], [0.1, float("nan")]), ([0], [0.1, 0.2])]
)
def test_metrics_refuse_bad_input(labels, scores):
    with pytest.raises(ValueError):
        binary_metrics(labels, scores)


# --- evaluation ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval")
    for name in ("real", "fake"):
        (root / name).mkdir()
    faces = clipgen.face_frames(n=8)
    clipgen.write_mjpg_avi(faces, root / "real" / "face.avi")
    clipgen.write_mjpg_avi([f[:, ::-1].copy() for f in faces], root / "fake" / "mirrored.avi")
    clipgen.write_mjpg_avi(clipgen.no_face_frames(n=8), root / "fake" / "cup.avi")
    (root / "fake" / "broken.mp4").write_bytes(b"\x00" * 64)
    return root


@pytest.fixture
def random_card(tmp_path, monkeypatch) -> str:
    """A Meso4 card with seeded random weights in a private user cache (hermetic, no shared data)."""
    import keras

    import models
    from models.cards import ModelCard, WeightsSpec, write_card
    from models.weights import sha256_of

    cache = tmp_path / "cache"
    monkeypatch.setenv("DFI_CACHE_DIR", str(cache))
    keras.utils.set_random_seed(0)
    net = models.build_model(models.get_card("meso4.df"))
    weights = cache / "weights" / "meso4.evaltest.weights.h5"
    weights.parent.mkdir(parents=True)
    net.save_weights(str(weights))
    card = ModelCard(
        id="meso4.evaltest",
        family="mesonet",
        architecture="meso4",
        display_name="Meso4 (random, for tests)",
        input_size=256,
        preprocess="unit",
        output="p_fake",
        weights=WeightsSpec("meso4.evaltest.weights.h5", sha256_of(weights), None, "test"),
        threshold=0.5,
        band=(0.35, 0.65),
        trained_on="nothing",
        metrics={},
        created="2026-01-01",
        description="random weights",
    )
    write_card(card, cache / "cards", {n: a.family for n, a in models.ARCHITECTURES.items()})
    return card.id


def test_find_clips_labels_and_refuses_empty(clip_folder, tmp_path):
    clips = find_clips(clip_folder)
    assert [(p.name, y) for p, y in clips] == [("face.avi", 0), ("broken.mp4", 1), ("cup.avi", 1), ("mirrored.avi", 1)]
    with pytest.raises(EvaluationError):
        find_clips(tmp_path)


def test_restrict_to_split_keeps_held_out_clips(clip_folder, tmp_path):
    (tmp_path / "sources.csv").write_text("source,split\nreal/face.avi,test\nfake/cup.avi,train\n")
    kept = restrict_to_split(find_clips(clip_folder), clip_folder, tmp_path, "test")
    assert [p.name for p, _ in kept] == ["face.avi"]
    with pytest.raises(EvaluationError, match="split"):
        restrict_to_split(find_clips(clip_folder), clip_folder, tmp_path, "val")


@pytest.mark.slow
def test_evaluate_lists_every_clip_and_scores_the_analysed_ones(clip_folder, random_card):
    result = evaluate(clip_folder, [random_card], frames=4)
    json.dumps(result, allow_nan=False)
    assert result["schema"] == "dfi.evaluation/1"
    assert result["counts"] == {"clips": 4, "real": 1, "fake": 3, "analysed": 2, "no_face": 1, "errors": 1}
    assert {s["path"]: s["status"] for s in result["skipped"]} == {
        "fake/broken.mp4": "error",
        "fake/cup.avi": "no_face",
    }
    rows = {r["path"]: r for r in result["clips"]}
    assert set(rows) == {"real/face.avi", "fake/mirrored.avi", "fake/cup.avi", "fake/broken.mp4"}
    assert rows["fake/cup.avi"]["p_fake"] == {random_card: None}
    model = result["models"][0]
    assert model["id"] == random_card and model["available"] and model["clips_scored"] == 2
    assert model["video"]["n"] == 2 and model["video"]["auc"] in (0.0, 1.0)
    assert model["frame"]["n"] == 8 and model["roc"] is not None
    p_real, p_fake = rows["real/face.avi"]["p_fake"][random_card], rows["fake/mirrored.avi"]["p_fake"][random_card]
    assert model["video"]["auc"] == (1.0 if p_fake > p_real else 0.0)


@pytest.mark.slow
def test_evaluate_command_line_json(clip_folder, random_card, capsys):
    assert (
        main(
            [
                "evaluate",
                "--data",
                str(clip_folder),
                "--models",
                random_card,
                "--frames",
                "2",
                "--json",
                "-",
                "--no-progress",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["counts"]["clips"] == 4 and result["models"][0]["id"] == random_card


def test_evaluate_command_line_bad_folder(tmp_path, capsys):
    assert main(["evaluate", "--data", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: no clips")


@pytest.mark.slow
@pytest.mark.shared
def test_evaluate_shared_clips_matches_analyze(shared_data, mesonet_weights_dir, tmp_path, monkeypatch):
    """Two real and two fake shared clips with the authors' Meso4: evaluation = the analyzer's score."""
    from core.engine.analysis import analyze

    monkeypatch.setenv("DFI_WEIGHTS_DIR", str(mesonet_weights_dir))
    monkeypatch.setenv("DFI_CACHE_DIR", str(tmp_path / "cache"))
    picked = {
        "real": ["ffpp_youtube_c40_183.mp4", "dfdc_lynaeydofd.mp4"],
        "fake": ["ffpp_Deepfakes_c40_183_253.mp4", "dfdc_adylbeequz.mp4"],
    }
    clips = [
        (shared_data / "clips" / label / name, int(label == "fake"))
        for label, names in picked.items()
        for name in names
    ]
    result = evaluate(shared_data / "clips", ["meso4.df"], frames=8, clips=clips)
    assert result["counts"]["analysed"] == 4 and result["skipped"] == []
    model = result["models"][0]
    assert model["video"]["n"] == 4 and model["video"]["auc"] is not None
    row = next(r for r in result["clips"] if r["path"].endswith("dfdc_adylbeequz.mp4"))
    direct = analyze(clips[3][0], ["meso4.df"], frames=8).models[0].p_fake
    assert row["p_fake"]["meso4.df"] == pytest.approx(direct, abs=1e-6)


def test_auc_interval_brackets_the_auc_and_narrows_with_more_clips():
    from core.evaluation.metrics import auc_interval

    rng = np.random.default_rng(3)

    def scores(n):
        y = np.r_[np.zeros(n), np.ones(n)]
        return y, np.clip(0.15 * y + 0.85 * rng.random(2 * n), 0, 1)

    small, large = scores(12), scores(300)
    low_s, high_s = auc_interval(*small)
    low_l, high_l = auc_interval(*large)
    from sklearn.metrics import roc_auc_score

    assert low_s <= roc_auc_score(*small) <= high_s
    assert low_l <= roc_auc_score(*large) <= high_l
    assert high_l - low_l < (high_s - low_s) / 2
    assert auc_interval([0, 0, 0], [0.1, 0.2, 0.3]) is None
