"""core/evaluation/calibration.py: Platt scaling, expected calibration error, bands derived by a stated rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, logit
from sklearn.metrics import log_loss

from core.evaluation.calibration import derive_band, expected_calibration_error, fit_platt, verdict_stats
from models.calibration import apply_calibration


def informative_but_overconfident(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from true probabilities, and raw scores that rank well but are too extreme
    and shifted towards fake (like a network trained on other sources)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, n)
    labels = (rng.random(n) < expit(z)).astype(int)
    return labels, expit(3.0 * z + 1.0)


def test_platt_keeps_the_order_and_lowers_log_loss_on_its_own_scores():
    labels, raw = informative_but_overconfident()
    calibration = fit_platt(labels, raw)
    assert calibration["method"] == "platt" and calibration["n"] == labels.size
    assert calibration["a"] > 0 and isinstance(calibration["a"], float) and isinstance(calibration["b"], float)
    calibrated = apply_calibration(calibration, raw)
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(calibrated[order]) >= 0)  # monotonic: a clip never overtakes another
    assert log_loss(labels, calibrated) < log_loss(labels, np.clip(raw, 1e-6, 1 - 1e-6)) - 0.05
    # The raw scores were 3x too steep and shifted by +1 in logit space: the fit undoes that.
    assert calibration["a"] == pytest.approx(1 / 3, abs=0.1)
    assert calibration["b"] == pytest.approx(-1 / 3, abs=0.25)


def test_apply_is_the_platt_formula_and_identity_without_calibration():
    raw = np.array([0.0, 0.2, 0.5, 0.9, 1.0])
    got = apply_calibration({"method": "platt", "a": 2.0, "b": 0.5}, raw)
    clipped = np.clip(raw, 1e-6, 1 - 1e-6)
    np.testing.assert_allclose(got, expit(2.0 * logit(clipped) + 0.5))
    assert got.dtype == np.float64 and got.min() >= 0 and got.max() <= 1
    same = apply_calibration(None, [0.1, 0.7])
    assert same.dtype == np.float64 and same.tolist() == [0.1, 0.7]
    assert apply_calibration(None, []).shape == (0,)
    assert apply_calibration({"method": "platt", "a": 1.0, "b": 0.0}, np.zeros(0)).shape == (0,)
    with pytest.raises(ValueError, match="unknown calibration method"):
        apply_calibration({"method": "isotonic"}, raw)


def test_anti_correlated_scores_are_refused():
    labels, raw = informative_but_overconfident(seed=1)
    with pytest.raises(ValueError, match="no usable ranking"):
        fit_platt(labels, 1.0 - raw)


@pytest.mark.parametrize("labels, scores", [([1, 1, 1], [0.2, 0.6, 0.9]), ([], [])])
def test_platt_needs_both_classes(labels, scores):
    with pytest.raises(ValueError, match="both classes"):
        fit_platt(labels, scores)


def test_ece_is_small_when_calibrated_and_large_when_overconfident():
    rng = np.random.default_rng(2)
    p = rng.random(20000)
    labels = (rng.random(p.size) < p).astype(int)
    assert expected_calibration_error(labels, p) < 0.02
    overconfident = expit(4.0 * logit(np.clip(p, 1e-6, 1 - 1e-6)))
    assert expected_calibration_error(labels, overconfident) > 0.1
    # Hand-worked: bins [0, 0.5) and [0.5, 1]; |0 - 0.2| and |1/2 - 0.8| weighted 1/3 and 2/3.
    assert expected_calibration_error([0, 1, 0], [0.2, 0.8, 0.8], bins=2) == pytest.approx(0.2 / 3 + 0.3 * 2 / 3)
    assert expected_calibration_error([1], [1.0]) == 0.0  # a score of 1 lands in the last bin
    with pytest.raises(ValueError):
        expected_calibration_error([], [])


def meets_rule(labels, probs, lower, upper, min_accuracy):
    fake, real = probs >= upper, probs <= lower
    return (not fake.any() or labels[fake].mean() >= min_accuracy) and (
        not real.any() or (1 - labels[real]).mean() >= min_accuracy
    )


@pytest.mark.parametrize("threshold", [0.5, 0.3, 0.7])
def test_derived_band_meets_its_rule_and_is_the_narrowest(threshold):
    labels, raw = informative_but_overconfident(n=400, seed=3)
    probs = apply_calibration(fit_platt(labels, raw), raw)
    result = derive_band(labels, probs, threshold=threshold, min_accuracy=0.85)
    lower, upper = result["band"]
    assert 0.0 <= lower <= threshold <= upper <= 1.0
    assert round(lower, 3) == lower and round(upper, 3) == upper
    assert meets_rule(labels, probs, lower, upper, 0.85)
    # Narrowest: no rounded observed score between the threshold and an end meets the rule there.
    rounded = np.unique(np.round(probs, 3))
    for u in rounded[(rounded >= threshold) & (rounded < upper)]:
        assert labels[probs >= u].mean() < 0.85
    for low in rounded[(rounded <= threshold) & (rounded > lower)]:
        assert (1 - labels[probs <= low]).mean() < 0.85
    stats = verdict_stats(labels, probs, result["band"])
    assert result["uncertain_share"] == stats["uncertain_share"]
    assert result["verdict_accuracy"] == stats["verdict_accuracy"] >= 0.85
    assert result["n"] == labels.size and "85%" in result["rule"] and str(threshold) in result["rule"]
    assert 0 < result["uncertain_share"] < 1


def test_a_side_that_never_meets_the_rule_gives_no_verdict():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 200)
    probs = rng.random(200)  # no relation to the labels
    result = derive_band(labels, probs, min_accuracy=0.99)
    assert result["band"] == [0.0, 1.0]
    assert result["uncertain_share"] == pytest.approx(np.mean((probs < 1.0) & (probs > 0.0)))


def test_band_with_one_class_and_with_no_scores():
    result = derive_band([1, 1, 1], [0.2, 0.6, 0.9], threshold=0.5)
    assert result["band"] == [0.0, 0.5]  # every clip is fake: FAKE from the threshold, never REAL
    assert result["verdict_accuracy"] == 1.0 and result["uncertain_share"] == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        derive_band([], [])
    empty = verdict_stats([], [], (0.3, 0.7))
    assert empty["n"] == 0 and empty["uncertain_share"] is None and empty["verdict_accuracy"] is None


def test_verdict_stats_counts_like_verdict_for():
    labels = np.array([1, 1, 0, 0, 1, 0])
    probs = np.array([0.9, 0.7, 0.7, 0.1, 0.5, 0.3])
    stats = verdict_stats(labels, probs, (0.3, 0.7))
    assert (stats["n_fake_verdicts"], stats["n_real_verdicts"], stats["n_uncertain"]) == (3, 2, 1)
    assert stats["fake_verdict_accuracy"] == pytest.approx(2 / 3) and stats["real_verdict_accuracy"] == 1.0
    assert stats["verdict_accuracy"] == pytest.approx(4 / 5) and stats["uncertain_share"] == pytest.approx(1 / 6)
