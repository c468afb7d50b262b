"""The out-of-source summary: per-source and pooled metrics, calibration, and the uncertain band.

Input: clips scored by models that never saw their source (``cross-validate --by-source``), each
``{"source", "label", "collection", "crop_p": [...], "p_fake"}``. Output, as plain JSON values:

- ``per_source``: video AUC with a bootstrap interval, accuracy and counts for each source;
- ``pooled``: the same over every held-out clip, raw scores;
- ``calibration``: Platt scaling of crop scores fitted on all the out-of-source crops, and the
  uncertain band derived from the calibrated clip scores by the rule the card states — what a card
  ships;
- ``calibrated_crossfit``: the honest figures for that calibration and band: for each held-out
  source, the calibration and band are fitted on the *other* sources' scores only, then applied to
  it; expected calibration error, share UNCERTAIN and accuracy of FAKE/REAL verdicts are
  measured on the clips so scored. Nothing is fitted on the clips it is measured on.

Crop-level calibration because that is where the registry applies it (each crop's p_fake is
calibrated, the clip is the mean of its crops, as ``analyze`` aggregates).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from core.evaluation.calibration import (
    derive_band,
    expected_calibration_error,
    fit_platt,
)
from core.evaluation.metrics import auc_interval, binary_metrics, roc_points
from models.calibration import apply_calibration

CROSSVAL_SCHEMA = "dfi.crossval/1"
MIN_VERDICT_ACCURACY = 0.85  # the band rule: outside it, verdicts were right at least this often


def _round(value, digits: int = 4):
    return None if value is None else round(float(value), digits)


def _metrics(labels: list[int], scores: list[float], threshold: float) -> dict:
    m = binary_metrics(labels, scores, threshold)
    ci = auc_interval(labels, scores)
    return {
        "auc": _round(m["auc"]),
        "auc_ci95": [round(ci[0], 3), round(ci[1], 3)] if ci else None,
        "accuracy": _round(m["accuracy"]),
        "log_loss": _round(m["log_loss"]),
        "eer": _round(m["eer"]),
        "n_real": m["n_real"],
        "n_fake": m["n_fake"],
    }


def _clip_means(clips: list[dict], calibration: dict | None) -> np.ndarray:
    return np.array([float(np.mean(apply_calibration(calibration, np.asarray(c["crop_p"])))) for c in clips])


def _crop_arrays(clips: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    labels = np.concatenate([[c["label"]] * len(c["crop_p"]) for c in clips])
    scores = np.concatenate([c["crop_p"] for c in clips])
    return labels.astype(np.int64), scores.astype(np.float64)


def fit_calibration_and_band(
    clips: list[dict], threshold: float = 0.5, min_accuracy: float = MIN_VERDICT_ACCURACY
) -> tuple[dict | None, dict]:
    """Platt scaling on the crops of ``clips``, then the band on their calibrated clip scores.

    Returns ``(calibration or None when the scores carry no usable ranking, band result)``.
    """
    labels, scores = _crop_arrays(clips)
    try:
        calibration = fit_platt(labels, scores)
    except ValueError:
        calibration = None
    clip_labels = np.array([c["label"] for c in clips])
    band = derive_band(clip_labels, _clip_means(clips, calibration), threshold, min_accuracy)
    return calibration, band


def crossfit(clips: list[dict], threshold: float = 0.5, min_accuracy: float = MIN_VERDICT_ACCURACY) -> dict:
    """Calibration and band judged honestly: each source scored with both fitted on the others."""
    by_source: dict[str, list[dict]] = defaultdict(list)
    for c in clips:
        by_source[c["collection"]].append(c)
    labels, probs, verdict_in = [], [], []
    for source, held in sorted(by_source.items()):
        others = [c for c in clips if c["collection"] != source]
        if len({c["label"] for c in others}) < 2:
            continue
        calibration, band = fit_calibration_and_band(others, threshold, min_accuracy)
        p = _clip_means(held, calibration)
        lo, hi = band["band"]
        labels += [c["label"] for c in held]
        probs += p.tolist()
        verdict_in += [(lo, hi)] * len(held)
    if not labels:
        return {}
    y, p = np.array(labels), np.array(probs)
    lows, highs = np.array([b[0] for b in verdict_in]), np.array([b[1] for b in verdict_in])
    decided = (p <= lows) | (p >= highs)
    right = ((p >= highs) & (y == 1)) | ((p <= lows) & (y == 0))
    m = binary_metrics(y.tolist(), p.tolist(), threshold)
    return {
        "n": int(y.size),
        "ece": _round(expected_calibration_error(y, p)),
        "log_loss": _round(m["log_loss"]),
        "accuracy": _round(m["accuracy"]),
        "uncertain_share": _round(1.0 - decided.mean()),
        "verdict_accuracy": _round(right.sum() / decided.sum()) if decided.any() else None,
        "verdicts": int(decided.sum()),
    }


def source_report(clips: list[dict], threshold: float = 0.5, min_accuracy: float = MIN_VERDICT_ACCURACY) -> dict:
    """Per-source and pooled metrics, the shippable calibration and band, and their crossfit."""
    by_source: dict[str, list[dict]] = defaultdict(list)
    for c in clips:
        by_source[c["collection"]].append(c)
    y = [c["label"] for c in clips]
    p = [c["p_fake"] for c in clips]
    per_source = {
        s: _metrics([c["label"] for c in cs], [c["p_fake"] for c in cs], threshold)
        for s, cs in sorted(by_source.items())
    }
    calibration, band = fit_calibration_and_band(clips, threshold, min_accuracy)
    pooled = _metrics(y, p, threshold)
    pooled["ece"] = _round(expected_calibration_error(np.array(y), np.array(p)))
    return {
        "pooled": pooled,
        "per_source": per_source,
        "source_aucs": [v["auc"] for v in per_source.values()],
        "calibration": calibration,
        "band": band,
        "calibrated_crossfit": crossfit(clips, threshold, min_accuracy),
        "roc": roc_points(y, p),
    }


def summarise_by_source(spec, sources: list[str], clips: list[dict], fold_runs: list[dict]) -> dict:
    """``crossval.json`` of a by-source cross-validation."""
    report = source_report(clips, spec.threshold)
    crop_labels, crop_scores = _crop_arrays(clips) if clips else (np.zeros(0), np.zeros(0))
    return {
        "schema": CROSSVAL_SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "protocol": (
            f"leave-one-source-out cross-validation on {Path(spec.data).name}, sources held "
            f"out in turn: {', '.join(sources)}: each clip scored by a model trained "
            "without any clip of its source; clip score = mean crop p_fake"
        ),
        "by_source": True,
        "spec": spec.to_dict(),
        "video": binary_metrics([c["label"] for c in clips], [c["p_fake"] for c in clips], spec.threshold),
        "video_auc_ci95": report["pooled"]["auc_ci95"],
        "frame": binary_metrics(crop_labels.tolist(), crop_scores.tolist(), spec.threshold),
        **report,
        "folds": [
            {
                "fold": s,
                "clips": sum(1 for c in clips if c["collection"] == s),
                "auc": report["per_source"].get(s, {}).get("auc"),
            }
            for s in sources
        ],
        "runs": fold_runs,
        "clips": clips,
    }
