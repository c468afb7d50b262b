"""How far to trust a detector, in plain words, from the measurements on its card.

No Streamlit here: the verdict cards (``views/common/verdicts.py``) and the Detectors page show
these sentences. The words are graded by what was measured on sources the model never saw
(video AUC, verdicts right outside the band, share UNCERTAIN, calibration error), and say so.
"""

from __future__ import annotations


def percent(p: float, short: bool = False) -> str:
    """p_fake as a percentage that never claims certainty: "less than 1%" / "<1%" at the ends."""
    if p < 0.005:
        return "<1%" if short else "less than 1%"
    if p > 0.995:
        return ">99%" if short else "more than 99%"
    return f"{p:.0%}"


_TRUST_WORDS = (
    "barely better than guessing",
    "only a weak hint — it is often wrong",
    "fairly reliable, but it makes mistakes",
    "reliable on clips like the ones it was tested on",
)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _auc_level(auc: float) -> int:
    return 3 if auc >= 0.9 else 2 if auc >= 0.75 else 1 if auc >= 0.6 else 0


def _verdict_level(accuracy: float, uncertain: float) -> int:
    level = 3 if accuracy >= 0.9 else 2 if accuracy >= 0.8 else 1 if accuracy >= 0.65 else 0
    # Right most of the time, but only on the few clips it commits on, is not "reliable".
    return min(level, 2) if uncertain > 0.5 else level


def _tested_on(metrics: dict) -> str:
    """Where the figures come from, claiming no more than the card says."""
    clips = "test clips"
    if _number(metrics.get("n_real")) and _number(metrics.get("n_fake")):
        clips = f"{int(metrics['n_real']) + int(metrics['n_fake'])} test clips"
    # Only a cross-source evaluation reports per-source figures: then every clip's source was
    # unseen by the model that scored it.
    return clips + (" from video sources it never saw" if isinstance(metrics.get("per_source"), dict) else "")


def reliability(metrics: dict) -> str | None:
    """How far a non-specialist should trust a detector, from its card's measured figures, or None.

    With ``verdict_accuracy`` and ``uncertain_share`` (the band's measured record) it says how
    often the verdicts were right and how often it said uncertain; the overall words never rate it
    above its video AUC either. Otherwise the words come from the video AUC alone.
    """
    auc, accuracy, uncertain = (metrics.get(k) for k in ("video_auc", "verdict_accuracy", "uncertain_share"))
    if _number(uncertain) and (_number(accuracy) or uncertain >= 1):
        if not _number(accuracy):
            return (
                f"it said uncertain on every one of the {_tested_on(metrics)}, so its score is no evidence either way."
            )
        level = _verdict_level(accuracy, uncertain)
        if _number(auc):
            level = min(level, _auc_level(auc))
        return (
            f"{_TRUST_WORDS[level]}: when it gives a verdict it was right {percent(accuracy)} of "
            f"the time on {_tested_on(metrics)}; it said uncertain on {percent(uncertain)} of them."
        )
    if not _number(auc):
        return None
    return (
        f"{_TRUST_WORDS[_auc_level(auc)]} (it scored {auc:.2f} in testing, where 1.00 is perfect and 0.50 a coin toss)."
    )


# Keys metrics_sentence words itself; anything else plain (a number, a string) is listed as it is.
_WORDED = (
    "protocol",
    "video_auc",
    "video_auc_ci95",
    "n_real",
    "n_fake",
    "verdict_accuracy",
    "uncertain_share",
    "ece",
    "per_source",
    "five_fold",
    "out_of_source",
)


def metrics_sentence(metrics: dict) -> str:
    """A card's metrics in words: the video AUC explained, the verdicts' record, calibration, the
    weakest source, then any other plain figures as they are (nested tables are summarised, never
    dumped)."""
    parts = [
        part
        for part in (
            _auc_words(metrics),
            _verdict_words(metrics),
            _ece_words(metrics),
            _source_words(metrics.get("per_source")),
            _five_fold_words(metrics.get("five_fold")),
        )
        if part
    ]
    rest = {
        k: v
        for k, v in metrics.items()
        if k not in _WORDED and v is not None and not isinstance(v, (dict, list, tuple))
    }
    parts += [
        f"{k.replace('_', ' ')} {v:.3f}" if isinstance(v, float) else f"{k.replace('_', ' ')} {v}"
        for k, v in rest.items()
    ]
    return "; ".join(parts) + "." if parts else "not measured yet."


def _auc_words(metrics: dict) -> str | None:
    if not _number(metrics.get("video_auc")):
        return None
    clips = ""
    if "n_real" in metrics and "n_fake" in metrics:
        clips = f" on {metrics['n_real']} real and {metrics['n_fake']} fake clips"
        if isinstance(metrics.get("per_source"), dict):
            clips += " from sources it never saw"
    interval = metrics.get("video_auc_ci95")
    if isinstance(interval, list) and len(interval) == 2:
        # Few test clips make an AUC shaky; the interval says how shaky.
        clips += f", 95% sure it lies between {interval[0]:.2f} and {interval[1]:.2f}"
    return f"video AUC {metrics['video_auc']:.2f}{clips} (1.00 = always right, 0.50 = no better than a coin toss)"


def _verdict_words(metrics: dict) -> str | None:
    accuracy, uncertain = metrics.get("verdict_accuracy"), metrics.get("uncertain_share")
    words = []
    if _number(accuracy):
        words.append(f"its FAKE and REAL verdicts were right {percent(accuracy)} of the time")
    if _number(uncertain):
        words.append(f"it said UNCERTAIN on {percent(uncertain)} of clips")
    return ", and ".join(words) or None


def _ece_words(metrics: dict) -> str | None:
    ece = metrics.get("ece")
    if not _number(ece):
        return None
    return f"calibration error {ece:.3f} (0 = a score of 80% means fake 80% of the time)"


def _source_words(per_source) -> str | None:
    """The weakest source by AUC (the figure a user from an unseen source should expect)."""
    if not isinstance(per_source, dict):
        return None
    scored = {name: row["auc"] for name, row in per_source.items() if isinstance(row, dict) and _number(row.get("auc"))}
    if not scored:
        return None
    weakest = min(scored, key=scored.get)
    if len(scored) == 1:
        return f"scored on one source, {weakest} (AUC {scored[weakest]:.2f})"
    best = max(scored, key=scored.get)
    return (
        f"weakest of {len(scored)} sources: {weakest} (AUC {scored[weakest]:.2f}), "
        f"best: {best} (AUC {scored[best]:.2f})"
    )


def _five_fold_words(five_fold) -> str | None:
    # Five-fold splits keep clips of one source on both sides, so its AUC is the optimistic one.
    if not isinstance(five_fold, dict):
        return None
    auc = next((five_fold[k] for k in ("video_auc", "auc") if _number(five_fold.get(k))), None)
    return None if auc is None else f"5-fold video AUC {auc:.2f} (sources shared across folds, so optimistic)"
