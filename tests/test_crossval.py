"""Leave-clips-out cross-validation (core.evaluation.crossval) and the cross-validate command."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.__main__ import main
from core.evaluation.crossval import clip_scores, fold_names
from core.training.networks import TrainError
from tests.test_train import make_dataset, user_cache  # noqa: F401 — user_cache is a fixture


def test_fold_names_default_to_every_fold_and_check_names():
    rows = [{"split": s} for s in ("fold0", "fold1", "fold2", "test")]
    assert fold_names(rows, None) == (["fold0", "fold1", "fold2"], ["fold0", "fold1", "fold2"])
    assert fold_names(rows, ["fold1"]) == (["fold0", "fold1", "fold2"], ["fold1"])
    with pytest.raises(TrainError, match="fold7"):
        fold_names(rows, ["fold7"])
    with pytest.raises(TrainError, match="--folds 2"):
        fold_names([{"split": "train"}, {"split": "val"}], None)


def test_clip_scores_average_each_clip_crops():
    rows = [{"source": "a.mp4", "label": 1}, {"source": "a.mp4", "label": 1}, {"source": "b.mp4", "label": 0}]
    clips = clip_scores(rows, np.array([0.2, 0.6, 0.1]), "fold3")
    assert clips == [
        {"source": "a.mp4", "label": 1, "fold": "fold3", "crops": 2, "p_fake": pytest.approx(0.4)},
        {"source": "b.mp4", "label": 0, "fold": "fold3", "crops": 1, "p_fake": pytest.approx(0.1)},
    ]


@pytest.mark.slow
def test_cross_validate_scores_every_clip_once_with_a_model_that_never_saw_it(tmp_path, user_cache, capsys):
    data = make_dataset(tmp_path / "data", {"fold0": (4, 4), "fold1": (4, 4)})
    out = tmp_path / "cv"
    code = main(
        [
            "cross-validate",
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
    assert "video AUC" in printed and "per fold: fold0" in printed
    result = json.loads((out / "crossval.json").read_text())
    assert result["schema"] == "dfi.crossval/1"
    assert sorted(c["source"] for c in result["clips"]) == sorted(
        f"{s}/{label}/{i}.mp4" for s in ("fold0", "fold1") for label in (0, 1) for i in range(4)
    )
    for run in result["runs"]:  # each fold's model trained on the other fold only
        spec = json.loads((out / f"cv{result['runs'].index(run)}" / "spec.json").read_text())
        assert spec["train_splits"] == [f for f in ("fold0", "fold1") if f != run["fold"]]
        assert spec["val_split"] == ""
    assert result["video"]["n"] == 16 and result["frame"]["n"] == 16
    # The synthetic classes differ by high-frequency noise, which even 3 epochs of Meso4 pick up.
    assert result["video"]["auc"] > 0.8
    assert not (user_cache / "cards").exists()  # nothing registered
