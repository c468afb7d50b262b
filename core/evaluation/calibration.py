"""Calibrated scores and uncertain bands derived from labelled scores (label 1 = FAKE).

A detector's raw p_fake ranks clips but rarely means what it says: a network trained on other
sources may give 0.9 to clips that are fake half the time. Platt scaling in logit space maps raw
scores to probabilities fitted on out-of-source scores, and :func:`derive_band` turns those
probabilities into a card's uncertain band by a rule the card can state in one sentence. The fits
come from sklearn; this module only fixes the conventions and keeps every value plain JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression

from core.evaluation.metrics import _as_arrays
from models.calibration import logits

# Large C = effectively unregularised (the fit has two parameters and is meant to follow the data),
# yet finite, so perfectly separated scores give a steep but finite slope instead of diverging.
PLATT_C = 1e4
BAND_DECIMALS = 3


def fit_platt(labels: Sequence[int], scores: Sequence[float]) -> dict:
    """Fit Platt scaling ``p_cal = sigmoid(a * logit(p) + b)`` on labelled scores.

    Args:
        labels: 1 = FAKE, 0 = REAL.
        scores: raw p_fake in [0, 1], same length; fit on scores the model never trained on.

    Returns:
        ``{"method": "platt", "a": float, "b": float, "n": int}``, ready for a card's
        ``calibration`` field.

    Raises:
        ValueError: bad labels or scores, a single class, or a slope ``a <= 0`` (the scores rank
            fakes no higher than reals, so a monotonic calibration cannot help).
    """
    y, p = _as_arrays(labels, scores)
    if y.size == 0 or not 0 < int(y.sum()) < y.size:
        raise ValueError("calibration needs labelled scores of both classes (real and fake)")
    model = LogisticRegression(C=PLATT_C, max_iter=1000)
    model.fit(logits(p).reshape(-1, 1), y)
    a, b = float(model.coef_[0, 0]), float(model.intercept_[0])
    if a <= 0:
        raise ValueError(
            f"the scores carry no usable ranking (fitted slope {a:.3g} <= 0): "
            "fakes do not score higher than reals, so calibration cannot help"
        )
    return {"method": "platt", "a": a, "b": b, "n": int(y.size)}


def expected_calibration_error(labels: Sequence[int], probs: Sequence[float], bins: int = 10) -> float:
    """Expected calibration error: per equal-width bin |share fake - mean p|, weighted by bin size.

    A score of 1.0 falls in the last bin. 0 means that of the clips scored about 80 %, about 80 %
    were fake, in every bin.

    Raises:
        ValueError: no scores, bad labels or scores, or ``bins < 1``.
    """
    y, p = _as_arrays(labels, probs)
    if y.size == 0:
        raise ValueError("expected calibration error needs at least one score")
    if bins < 1:
        raise ValueError("bins must be at least 1")
    index = np.minimum((p * bins).astype(np.int64), bins - 1)
    counts = np.bincount(index, minlength=bins)
    fake = np.bincount(index, weights=y, minlength=bins)
    mass = np.bincount(index, weights=p, minlength=bins)
    used = counts > 0
    gaps = np.abs(fake[used] - mass[used]) / counts[used]  # |share fake - mean p| per bin
    return float(np.sum(gaps * counts[used]) / y.size)


def verdict_stats(labels: Sequence[int], probs: Sequence[float], band: Sequence[float]) -> dict:
    """How a band would have done on labelled scores: share uncertain and verdict accuracy.

    Verdicts follow :func:`core.engine.verdicts.verdict_for`: FAKE at ``p >= upper``, else REAL at
    ``p <= lower``, else UNCERTAIN.

    Returns:
        ``{"n", "n_fake_verdicts", "n_real_verdicts", "n_uncertain", "uncertain_share",
        "verdict_accuracy", "fake_verdict_accuracy", "real_verdict_accuracy"}``; a share or
        accuracy with nothing to count (no clips, no verdicts of that kind) is None.
    """
    y, p = _as_arrays(labels, probs)
    lower, upper = float(band[0]), float(band[1])
    fake = p >= upper
    real = ~fake & (p <= lower)
    judged = fake | real
    right = (fake & (y == 1)) | (real & (y == 0))
    return {
        "n": int(y.size),
        "n_fake_verdicts": int(fake.sum()),
        "n_real_verdicts": int(real.sum()),
        "n_uncertain": int((~judged).sum()),
        "uncertain_share": _share(~judged, np.ones_like(judged)),
        "verdict_accuracy": _share(right, judged),
        "fake_verdict_accuracy": _share(right, fake),
        "real_verdict_accuracy": _share(right, real),
    }


def _share(hits: np.ndarray, among: np.ndarray) -> float | None:
    total = int(among.sum())
    return float((hits & among).sum() / total) if total else None


def _upper_end(y: np.ndarray, p: np.ndarray, candidates: np.ndarray, min_accuracy: float) -> float:
    # Ascending: the first end that meets the rule leaves the fewest clips uncertain.
    for u in np.sort(candidates):
        called = p >= u
        if called.any() and y[called].mean() >= min_accuracy:
            return float(u)
    return 1.0


def _lower_end(y: np.ndarray, p: np.ndarray, candidates: np.ndarray, min_accuracy: float) -> float:
    for low in np.sort(candidates)[::-1]:
        called = p <= low
        if called.any() and (1 - y[called]).mean() >= min_accuracy:
            return float(low)
    return 0.0


def derive_band(
    labels: Sequence[int], probs: Sequence[float], threshold: float = 0.5, min_accuracy: float = 0.85
) -> dict:
    """The narrowest uncertain band whose verdicts were right at least ``min_accuracy`` of the time.

    upper is the smallest candidate ``u >= threshold`` such that the clips with ``p >= u`` are
    FAKE at least ``min_accuracy`` of the time; lower the largest candidate ``l <= threshold`` such
    that the clips with ``p <= l`` are REAL at least ``min_accuracy`` of the time. Candidates are
    the observed scores rounded to 3 decimals, plus the threshold; the rule is checked on the
    rounded ends, so the band written to a card is the one that meets it. A side with no candidate
    that meets the rule never gives a verdict (upper 1.0, lower 0.0).

    Args:
        labels: 1 = FAKE, 0 = REAL.
        probs: calibrated p_fake of clips the model never trained on.
        threshold: the card's decision threshold.
        min_accuracy: the share of verdicts on each side that must have been right.

    Returns:
        ``{"band": [lower, upper], "rule": str, "uncertain_share": float,
        "verdict_accuracy": float | None, "n": int}``.

    Raises:
        ValueError: no scores, bad labels or scores, or threshold / min_accuracy out of range.
    """
    y, p = _as_arrays(labels, probs)
    if y.size == 0:
        raise ValueError("an uncertain band needs at least one labelled score")
    if not 0.0 <= threshold <= 1.0 or not 0.0 < min_accuracy <= 1.0:
        raise ValueError("threshold must lie in [0, 1] and min_accuracy in (0, 1]")
    observed = np.unique(np.round(p, BAND_DECIMALS))
    upper = _upper_end(y, p, np.append(observed[observed >= threshold], threshold), min_accuracy)
    lower = _lower_end(y, p, np.append(observed[observed <= threshold], threshold), min_accuracy)
    stats = verdict_stats(y, p, (lower, upper))
    rule = (
        f"From {y.size} labelled clip scores: upper is the lowest score at or above the threshold "
        f"{threshold:g} from which at least {min_accuracy:.0%} of the clips were fake, lower the "
        f"highest score at or below it up to which at least {min_accuracy:.0%} were real (a side "
        "where no score qualifies gives no verdict)."
    )
    return {
        "band": [lower, upper],
        "rule": rule,
        "uncertain_share": stats["uncertain_share"],
        "verdict_accuracy": stats["verdict_accuracy"],
        "n": int(y.size),
    }
