"""Applying a card's calibration to raw scores: the registry's half of calibration.

A card may carry a Platt calibration (fitted by ``core/evaluation/calibration.py`` on scores of
sources the model never saw); :func:`apply_calibration` maps raw p_fake through it. Only numpy and
scipy.special here, so loading a detector never imports sklearn.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit, logit

METHODS = ("platt",)


# Scores of exactly 0 or 1 have an infinite logit; clipping keeps one saturated score from
# dominating the fit while still ranking it beyond every finite score.
LOGIT_EPS = 1e-6


def logits(scores: np.ndarray) -> np.ndarray:
    return logit(np.clip(scores, LOGIT_EPS, 1.0 - LOGIT_EPS))


def apply_calibration(calibration: dict | None, scores: Sequence[float] | np.ndarray) -> np.ndarray:
    """Calibrated p_fake for raw ``scores`` (the scores themselves when ``calibration`` is None).

    Args:
        calibration: a card's ``calibration`` field (as :func:`fit_platt` returns), or None.
        scores: raw p_fake, any length (including none).

    Returns:
        float64 array, same shape as ``scores``, clipped to [0, 1].

    Raises:
        ValueError: an unknown calibration method.
    """
    p = np.asarray(scores, dtype=np.float64)
    if calibration is None:
        return np.clip(p, 0.0, 1.0)
    method = calibration.get("method")
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}: must be one of {', '.join(METHODS)}")
    calibrated = expit(float(calibration["a"]) * logits(p) + float(calibration["b"]))
    return np.clip(calibrated, 0.0, 1.0)
