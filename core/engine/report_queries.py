"""Plain lookups over a ClipReport: which models scored, their short names, crops by person.

Shared by the exports (heatmaps, the command line) and the pages; the plotly figures drawn from
the same lookups are presentation and live in ``views/figures/``. :func:`face_at_point` turns a
clicked timeline point back into the face crop it stands for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.types import ClipReport, FaceCrop, ModelResult, Verdict
from models.architectures import FAMILY_NAMES


def scored_models(report: ClipReport) -> list[ModelResult]:
    """The models in the report that produced per-frame scores, in report order."""
    return [m for m in report.models if m.frames]


def short_names(results: Sequence[ModelResult]) -> dict[str, str]:
    """A short label per model id: its family name, or its card id when the family repeats."""
    families = [r.family for r in results]
    return {r.id: FAMILY_NAMES.get(r.family, r.family) if families.count(r.family) == 1 else r.id for r in results}


def crop_verdict(scores: Mapping[str, float], bands: Mapping[str, tuple[float, float]]) -> Verdict:
    """The verdict one crop gets from all models that scored it: agreement or UNCERTAIN.

    FAKE when every model puts it at or above its upper band, REAL when every model puts it at or
    below its lower band, otherwise UNCERTAIN (the models disagree or are unsure).

    Args:
        scores: p_fake per model id for this crop.
        bands: (lower, upper) per model id.

    Returns:
        The crop's verdict; NO_FACE when no model scored it.
    """
    if not scores:
        return Verdict.NO_FACE
    if all(p >= bands[m][1] for m, p in scores.items()):
        return Verdict.FAKE
    if all(p <= bands[m][0] for m, p in scores.items()):
        return Verdict.REAL
    return Verdict.UNCERTAIN


def crop_scores(report: ClipReport) -> dict[tuple[int, int], dict[str, float]]:
    """p_fake per model id for every (frame_index, track_id) that was scored."""
    out: dict[tuple[int, int], dict[str, float]] = {}
    for result in scored_models(report):
        for s in result.frames:
            out.setdefault((s.frame_index, s.track_id), {})[result.id] = s.p_fake
    return out


def crops_by_track(report: ClipReport) -> dict[int, list[FaceCrop]]:
    """The report's crops grouped per person (track id ascending), each row in time order."""
    rows: dict[int, list[FaceCrop]] = {}
    for crop in sorted(report.crops, key=lambda c: (c.face.track_id, c.face.time_s)):
        rows.setdefault(crop.face.track_id, []).append(crop)
    return dict(sorted(rows.items()))


def face_at_point(report: ClipReport, point: Mapping) -> FaceCrop | None:
    """The crop behind a clicked timeline point (a plotly selection point), or None.

    Uses the point's ``customdata`` ([frame_index, track_id]) when present; otherwise the nearest
    crop in time.

    Args:
        report: the report the figure was drawn from.
        point: one entry of ``selection["points"]`` from ``st.plotly_chart(on_select=...)``.

    Returns:
        The matching FaceCrop, or None when the point does not stand for a crop.
    """
    custom = point.get("customdata")
    if isinstance(custom, (list, tuple)) and len(custom) >= 2:
        key = (int(custom[0]), int(custom[1]))
        for crop in report.crops:
            if (crop.face.frame_index, crop.face.track_id) == key:
                return crop
        return None
    x = point.get("x")
    if x is None or not report.crops:
        return None
    return min(report.crops, key=lambda c: abs(c.face.time_s - float(x)))
