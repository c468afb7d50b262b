"""Binary detection metrics (label 1 = FAKE) as plain, JSON-ready Python values.

All the statistics come from ``sklearn.metrics``; this module only fixes the conventions: which
class is positive, what a threshold means (``p >= threshold`` is FAKE, as in a card), how the
equal error rate is read off the ROC curve, and ``None`` (never NaN) where a value is undefined,
e.g. an AUC on a set holding one class only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from sklearn import metrics as skm

LOG_LOSS_EPS = 1e-7  # a confident wrong 0/1 score costs ~16 nats instead of infinity


def _as_arrays(y_true: Sequence[int], p_fake: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(p_fake, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"{y.size} labels but {p.size} scores")
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    if p.size and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1):
        raise ValueError("scores must be finite probabilities in [0, 1]")
    return y, p


def _both_classes(y: np.ndarray) -> bool:
    return y.size > 0 and 0 < int(y.sum()) < y.size


def roc_points(y_true: Sequence[int], p_fake: Sequence[float]) -> dict[str, list[float]] | None:
    """The ROC curve as lists ``fpr``, ``tpr``, ``thresholds`` (None with a single class).

    sklearn's first threshold is ``inf`` (nothing called fake); it is written as 1.000001 (above
    any score, so the meaning is kept) because JSON has no infinity.
    """
    y, p = _as_arrays(y_true, p_fake)
    if not _both_classes(y):
        return None
    fpr, tpr, thr = skm.roc_curve(y, p, drop_intermediate=True)
    thr = np.where(np.isfinite(thr), thr, 1.0 + 1e-6)
    return {"fpr": [float(v) for v in fpr], "tpr": [float(v) for v in tpr], "thresholds": [float(v) for v in thr]}


def equal_error_rate(y_true: Sequence[int], p_fake: Sequence[float]) -> float | None:
    """The error rate where the false-positive and false-negative rates are equal.

    Linear interpolation between the two ROC points where ``fpr - fnr`` changes sign.
    """
    y, p = _as_arrays(y_true, p_fake)
    if not _both_classes(y):
        return None
    fpr, tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    fnr = 1.0 - tpr
    diff = fpr - fnr  # rises from -1 (threshold inf) to +1 (threshold -inf)
    i = int(np.argmax(diff >= 0))
    if diff[i] == 0 or i == 0:
        return float(fpr[i])
    # Interpolate between point i-1 (diff < 0) and i (diff >= 0).
    t = -diff[i - 1] / (diff[i] - diff[i - 1])
    return float(fpr[i - 1] + t * (fpr[i] - fpr[i - 1]))


def binary_metrics(y_true: Sequence[int], p_fake: Sequence[float], threshold: float = 0.5) -> dict:
    """AUC, accuracy at ``threshold``, log loss, EER and confusion matrix for one model.

    Args:
        y_true: labels, 1 = FAKE, 0 = REAL.
        p_fake: scores in [0, 1], same length.
        threshold: ``p >= threshold`` counts as FAKE (a card's ``threshold``).

    Returns:
        ``{"n", "n_real", "n_fake", "auc", "accuracy", "balanced_accuracy", "log_loss", "eer",
        "threshold", "confusion": {"tn", "fp", "fn", "tp"}}``; a value that is undefined for this
        set (AUC or EER with one class, anything on an empty set) is None.
    """
    y, p = _as_arrays(y_true, p_fake)
    out: dict = {
        "n": int(y.size),
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
        "threshold": float(threshold),
        "auc": None,
        "accuracy": None,
        "balanced_accuracy": None,
        "log_loss": None,
        "eer": None,
        "confusion": {"tn": 0, "fp": 0, "fn": 0, "tp": 0},
    }
    if y.size == 0:
        return out
    pred = (p >= threshold).astype(np.int64)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    out["confusion"] = {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}
    out["accuracy"] = float(skm.accuracy_score(y, pred))
    out["log_loss"] = float(skm.log_loss(y, np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS), labels=[0, 1]))
    if _both_classes(y):
        out["auc"] = float(skm.roc_auc_score(y, p))
        out["balanced_accuracy"] = float(skm.balanced_accuracy_score(y, pred))
        out["eer"] = equal_error_rate(y, p)
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}


def auc_interval(
    y_true: Sequence[int], p_fake: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float] | None:
    """A percentile-bootstrap confidence interval of the ROC AUC, resampling clips (scipy).

    Small held-out sets give wide intervals; a card quoting an AUC on 24 clips should say how
    wide. None with a single class, or when a resample held one class only.
    """
    from scipy import stats

    y, p = _as_arrays(y_true, p_fake)
    if not _both_classes(y):
        return None

    def auc(yy, pp):
        return skm.roc_auc_score(yy, pp) if _both_classes(np.asarray(yy)) else float("nan")

    result = stats.bootstrap(
        (y, p),
        auc,
        paired=True,
        vectorized=False,
        n_resamples=resamples,
        confidence_level=confidence,
        method="percentile",
        random_state=np.random.default_rng(seed),
    )
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    return (low, high) if math.isfinite(low) and math.isfinite(high) else None
