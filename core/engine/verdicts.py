"""From per-frame scores to a clip's verdict: aggregate each track, pick the deciding track, decide.

A track is one person across the sampled frames. Its per-frame p_fake values are aggregated by
name (``AGGREGATIONS``); the most suspicious track seen in enough frames decides the clip (a clip
is fake if any person in it is); the card's uncertain band turns that p_fake into a verdict.
Pure functions over plain numbers: no models, no video.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from core.types import FrameScore, Verdict

AGGREGATIONS: dict[str, Callable[[np.ndarray], float]] = {
    "mean": lambda v: float(np.mean(v)),
    "median": lambda v: float(np.median(v)),
    "max": lambda v: float(np.max(v)),
}

# A track decides the clip only if it was seen in enough frames: a face glimpsed once (a passer-by,
# a false detection) must not outvote the person on screen the whole time.
MIN_TRACK_FRAMES = 2
MIN_TRACK_SHARE = 0.25


def check_aggregation(how: str) -> None:
    """Raise ValueError unless ``how`` names one of :data:`AGGREGATIONS`."""
    if how not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {how!r}: must be one of {', '.join(AGGREGATIONS)}")


def verdict_for(p: float, band: Sequence[float]) -> Verdict:
    """The verdict for a clip-level p_fake, given a card's uncertain band.

    Args:
        p: probability that the face is fake, in [0, 1].
        band: (lower, upper): REAL at or below lower, FAKE at or above upper, UNCERTAIN between.

    Returns:
        Verdict.FAKE, Verdict.REAL or Verdict.UNCERTAIN.
    """
    lower, upper = float(band[0]), float(band[1])
    if p >= upper:
        return Verdict.FAKE
    if p <= lower:
        return Verdict.REAL
    return Verdict.UNCERTAIN


def aggregate(values: Sequence[float], how: str = "mean") -> float:
    """Aggregate per-frame p_fake values of one track by name ("mean", "median" or "max").

    Raises:
        ValueError: unknown aggregation name, or no values.
    """
    check_aggregation(how)
    if len(values) == 0:
        raise ValueError("cannot aggregate an empty track")
    return AGGREGATIONS[how](np.asarray(values, dtype=np.float64))


def track_scores(scores: Sequence[FrameScore], how: str = "mean") -> dict[int, tuple[float, int]]:
    """Per track: (aggregated p_fake, number of frames scored)."""
    by_track: dict[int, list[float]] = {}
    for s in scores:
        by_track.setdefault(s.track_id, []).append(s.p_fake)
    return {tid: (aggregate(v, how), len(v)) for tid, v in sorted(by_track.items())}


def deciding_track(per_track: dict[int, tuple[float, int]]) -> int:
    """The track that decides the clip: the most suspicious one among tracks with enough frames.

    "Enough" is at least max(2, 25 % of the longest track's frames); if no track qualifies (e.g. every
    track was seen once), the longest track decides, the most suspicious one among equals.
    """
    if not per_track:
        raise ValueError("no tracks to choose from")
    longest = max(n for _, n in per_track.values())
    needed = max(MIN_TRACK_FRAMES, math.ceil(MIN_TRACK_SHARE * longest))
    candidates = {t: v for t, v in per_track.items() if v[1] >= needed}
    if not candidates:
        candidates = {t: v for t, v in per_track.items() if v[1] == longest}
    # Ties go to the lower track id so the choice is deterministic.
    return max(candidates, key=lambda t: (candidates[t][0], -t))


__all__ = [
    "AGGREGATIONS",
    "MIN_TRACK_FRAMES",
    "MIN_TRACK_SHARE",
    "aggregate",
    "check_aggregation",
    "deciding_track",
    "track_scores",
    "verdict_for",
]
