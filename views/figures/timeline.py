"""The Analyze page's plotly timeline: p_fake per sampled frame, one line per model and person.

No Streamlit here: the page passes the figure to ``st.plotly_chart`` and maps a clicked point back to
its crop with :func:`core.engine.report_queries.face_at_point`. The colours are shared by every
figure and by the verdict cards.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go

from core.engine.report_queries import scored_models, short_names
from core.types import ClipReport, ModelResult, Verdict

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
                    line={
                        "color": MODEL_COLOURS[m % len(MODEL_COLOURS)],
                        "dash": TRACK_DASHES[t % len(TRACK_DASHES)],
                        "width": 2,
                    },
                    marker={"size": 7},
                    hovertemplate=(
                        f"<b>{label}</b>: %{{y:.0%}} chance of fake<br>frame %{{customdata[0]}}<extra></extra>"
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
        xaxis={
            "title": "time in the clip (seconds)",
            "hoverformat": ".2f",
            "ticksuffix": " s",
            "range": [0, max(report.clip.duration_s, times[-1] if times else 0) or 1],
        },
        yaxis={"title": "chance the face is fake", "range": [-0.02, 1.02], "tickformat": ".0%"},
    )
    return fig


def _add_bands(fig: go.Figure, results: Sequence[ModelResult]) -> None:
    """Shade each distinct uncertain band once and draw each distinct threshold once."""
    bands = sorted({tuple(r.band) for r in results if r.verdict is not Verdict.UNAVAILABLE})
    for lower, upper in bands:
        fig.add_hrect(
            y0=lower, y1=upper, fillcolor=VERDICT_COLOURS[Verdict.UNCERTAIN], opacity=0.12, line_width=0, layer="below"
        )
        fig.add_hrect(
            y0=upper, y1=1.02, fillcolor=VERDICT_COLOURS[Verdict.FAKE], opacity=0.05, line_width=0, layer="below"
        )
        fig.add_hrect(
            y0=-0.02, y1=lower, fillcolor=VERDICT_COLOURS[Verdict.REAL], opacity=0.05, line_width=0, layer="below"
        )
    if len(bands) == 1:
        # Words on the chart itself, so nobody needs the legend to read the shading.
        fig.add_annotation(
            text="likely fake",
            xref="paper",
            x=1,
            y=bands[0][1],
            yanchor="bottom",
            xanchor="right",
            showarrow=False,
            font={"color": VERDICT_COLOURS[Verdict.FAKE]},
        )
        fig.add_annotation(
            text="likely real",
            xref="paper",
            x=1,
            y=bands[0][0],
            yanchor="top",
            xanchor="right",
            showarrow=False,
            font={"color": VERDICT_COLOURS[Verdict.REAL]},
        )
    for threshold in sorted({float(r.threshold) for r in results if r.verdict is not Verdict.UNAVAILABLE}):
        fig.add_hline(
            y=threshold,
            line_dash="dot",
            line_color="#374151",
            line_width=1,
            annotation_text=f"threshold {threshold:.0%}",
            annotation_position="top left",
        )
