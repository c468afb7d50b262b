"""Plotly figures and plain lookups the Analyze page draws from a ClipReport.

No Streamlit here (core/ never imports it): the page passes these figures to ``st.plotly_chart`` and
uses :func:`face_at_point` to turn a clicked point back into the face crop it stands for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import plotly.graph_objects as go

from core.types import ClipReport, FaceCrop, ModelResult, Verdict

# One colour per verdict, used by the cards, the gallery borders and the band shading. Chosen to
# stay distinguishable for the common red-green colour blindness: the FAKE red is warm and dark,
# the REAL green is bluish, and every verdict also has its word next to the colour.
VERDICT_COLOURS: dict[Verdict, str] = {
    Verdict.FAKE: "#c62828",
    Verdict.REAL: "#1b7f5a",
    Verdict.UNCERTAIN: "#b7791f",
    Verdict.NO_FACE: "#6b7280",
    Verdict.UNAVAILABLE: "#6b7280",
}

# Line colours per model, in order of appearance; distinct from the verdict colours on purpose so
# a model's line is never read as a verdict.
MODEL_COLOURS = ("#2563eb", "#7c3aed", "#0891b2", "#db2777", "#4b5563")
# Person 1 solid, person 2 dashed, ...: the model keeps its colour across people.
TRACK_DASHES = ("solid", "dash", "dot", "dashdot")

# Short names a non-technical reader can hold on to; the card id is used when two selected
# models share a family.
FAMILY_NAMES = {"xception": "Xception", "mesonet": "MesoNet"}


def scored_models(report: ClipReport) -> list[ModelResult]:
    """The models in the report that produced per-frame scores, in report order."""
    return [m for m in report.models if m.frames]


def short_names(results: Sequence[ModelResult]) -> dict[str, str]:
    """A short label per model id: its family name, or its card id when the family repeats."""
    families = [r.family for r in results]
    return {
        r.id: FAMILY_NAMES.get(r.family, r.family) if families.count(r.family) == 1 else r.id
        for r in results
    }


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


def timeline_figure(report: ClipReport, height: int = 360) -> go.Figure:
    """p_fake per sampled frame over time: one line per model (and per person), band shaded.

    Every sampled time is on the x axis; a frame where a person's face was not found is a None,
    and ``connectgaps=False`` leaves it as a visible gap rather than drawing a line across it.
    Each point carries ``customdata = [frame_index, track_id]`` so a click can be mapped back to
    its crop with :func:`face_at_point`.

    Args:
        report: an analysed clip (status "ok"; with no scores the figure only has the band).
        height: figure height in pixels.

    Returns:
        The plotly figure.
    """
    fig = go.Figure()
    times = list(report.sampling.times_s)
    indices = list(report.sampling.frame_indices)
    results = scored_models(report)
    names = short_names(results)
    track_ids = sorted({s.track_id for r in results for s in r.frames})
    several_people = len(track_ids) > 1

    for m, result in enumerate(results):
        by_key = {(s.frame_index, s.track_id): s.p_fake for s in result.frames}
        for t, track in enumerate(track_ids):
            y = [by_key.get((idx, track)) for idx in indices]
            if all(v is None for v in y):
                continue
            label = names[result.id] + (f" · person {track + 1}" if several_people else "")
            fig.add_trace(
                go.Scatter(
                    x=times,
                    y=y,
                    customdata=[[idx, track] for idx in indices],
                    name=label,
                    mode="lines+markers",
                    connectgaps=False,
                    line={"color": MODEL_COLOURS[m % len(MODEL_COLOURS)],
                          "dash": TRACK_DASHES[t % len(TRACK_DASHES)], "width": 2},
                    marker={"size": 7},
                    hovertemplate=(
                        f"<b>{label}</b>: %{{y:.0%}} chance of fake"
                        "<br>frame %{customdata[0]}<extra></extra>"
                    ),
                )
            )
    _add_bands(fig, report.models)
    fig.update_layout(
        height=height,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        hovermode="x unified",
        showlegend=True,  # name the line even when only one detector ran
        clickmode="event+select",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0},
        xaxis={"title": "time in the clip (seconds)", "hoverformat": ".2f", "ticksuffix": " s",
               "range": [0, max(report.clip.duration_s, times[-1] if times else 0) or 1]},
        yaxis={"title": "chance the face is fake", "range": [-0.02, 1.02], "tickformat": ".0%"},
    )
    return fig


def _add_bands(fig: go.Figure, results: Sequence[ModelResult]) -> None:
    """Shade each distinct uncertain band once and draw each distinct threshold once."""
    bands = sorted({tuple(r.band) for r in results if r.verdict is not Verdict.UNAVAILABLE})
    for lower, upper in bands:
        fig.add_hrect(y0=lower, y1=upper, fillcolor=VERDICT_COLOURS[Verdict.UNCERTAIN],
                      opacity=0.12, line_width=0, layer="below")
        fig.add_hrect(y0=upper, y1=1.02, fillcolor=VERDICT_COLOURS[Verdict.FAKE],
                      opacity=0.05, line_width=0, layer="below")
        fig.add_hrect(y0=-0.02, y1=lower, fillcolor=VERDICT_COLOURS[Verdict.REAL],
                      opacity=0.05, line_width=0, layer="below")
    if len(bands) == 1:
        # Words on the chart itself, so nobody needs the legend to read the shading.
        fig.add_annotation(text="likely fake", xref="paper", x=1, y=bands[0][1], yanchor="bottom",
                           xanchor="right", showarrow=False, font={"color": VERDICT_COLOURS[Verdict.FAKE]})
        fig.add_annotation(text="likely real", xref="paper", x=1, y=bands[0][0], yanchor="top",
                           xanchor="right", showarrow=False, font={"color": VERDICT_COLOURS[Verdict.REAL]})
    for threshold in sorted({float(r.threshold) for r in results if r.verdict is not Verdict.UNAVAILABLE}):
        fig.add_hline(y=threshold, line_dash="dot", line_color="#374151", line_width=1,
                      annotation_text=f"threshold {threshold:.0%}", annotation_position="top left")


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
