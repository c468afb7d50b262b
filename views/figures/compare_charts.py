"""Plotly figures the Compare page draws from a ``dfi.evaluation/1`` result (core.evaluation.evaluate).

ROC curves of every model on one chart, a reliability (calibration) chart, and clip p_fake of model
A against model B coloured by the true label. No Streamlit here: the page passes the figures to
``st.plotly_chart`` and turns a clicked point back into its clip with :func:`clip_at_point`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from sklearn.calibration import calibration_curve

from core.types import Verdict
from views.figures.timeline import MODEL_COLOURS, VERDICT_COLOURS

LABEL_WORDS = {0: "REAL", 1: "FAKE"}
LABEL_COLOURS = {0: VERDICT_COLOURS[Verdict.REAL], 1: VERDICT_COLOURS[Verdict.FAKE]}
_DIAGONAL = dict(color="#9ca3af", dash="dot", width=1)


def _layout(fig: go.Figure, x_title: str, y_title: str, height: int) -> go.Figure:
    fig.update_layout(
        height=height,
        margin=dict(l=10, r=10, t=30, b=10),
        legend=dict(orientation="h", y=-0.2),
        xaxis=dict(title=x_title, range=[-0.02, 1.02]),
        yaxis=dict(title=y_title, range=[-0.02, 1.02]),
        template="plotly_white",
    )
    return fig


def scored(result: Mapping, model_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, p_fake) of the clips ``model_id`` scored, in the result's clip order."""
    rows = [r for r in result["clips"] if r["p_fake"].get(model_id) is not None]
    return (
        np.array([r["label"] for r in rows], dtype=np.int64),
        np.array([r["p_fake"][model_id] for r in rows], dtype=np.float64),
    )


def roc_figure(result: Mapping, height: int = 420) -> go.Figure:
    """Every model's video-level ROC curve (from the result's ROC points) on one chart."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=_DIAGONAL, name="coin toss", hoverinfo="skip"))
    for i, model in enumerate(result["models"]):
        roc = model.get("roc")
        if not roc:
            continue  # unavailable, or a set with one class only: no curve to draw
        auc = model["video"]["auc"]
        fig.add_trace(
            go.Scatter(
                x=roc["fpr"],
                y=roc["tpr"],
                mode="lines+markers",
                line=dict(color=MODEL_COLOURS[i % len(MODEL_COLOURS)]),
                line_shape="hv",
                marker=dict(size=5),
                name=f"{model['id']} (AUC {auc:.3f})",
                customdata=[[t] for t in roc["thresholds"]],
                hovertemplate="calls FAKE from p ≥ %{customdata[0]:.3f}<br>real clips called fake %{x:.0%}"
                "<br>fake clips caught %{y:.0%}<extra>" + model["id"] + "</extra>",
            )
        )
    return _layout(
        fig, "Real clips wrongly called fake (false-positive rate)", "Fake clips caught (true-positive rate)", height
    )


def calibration_bins(labels: np.ndarray, scores: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean predicted p_fake, share really fake, clip count) for each non-empty equal-width bin."""
    frac_fake, mean_pred = calibration_curve(labels, scores, n_bins=n_bins, strategy="uniform")
    # sklearn drops empty bins; count the non-empty ones with its own edges and rule for the hover.
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.searchsorted(edges[1:-1], scores)
    counts = np.bincount(which, minlength=n_bins)
    return mean_pred, frac_fake, counts[counts > 0]


def calibration_figure(result: Mapping, n_bins: int | None = None, height: int = 420) -> go.Figure:
    """A reliability chart: in each score bin, the share of clips that really are fake.

    A well-calibrated model sits on the diagonal: of the clips it gives 80 %, 80 % are fake.

    Args:
        result: the evaluation result.
        n_bins: equal-width bins over [0, 1]; default about one bin per 5 clips, 3 to 10.
        height: chart height in pixels.
    """
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=_DIAGONAL, name="perfectly calibrated", hoverinfo="skip")
    )
    for i, model in enumerate(result["models"]):
        labels, scores = scored(result, model["id"])
        if labels.size == 0 or labels.min() == labels.max():
            continue  # nothing scored, or one class only: no share of fakes to compare with
        bins = n_bins or int(min(10, max(3, labels.size // 5)))
        mean_pred, frac_fake, counts = calibration_bins(labels, scores, bins)
        fig.add_trace(
            go.Scatter(
                x=mean_pred,
                y=frac_fake,
                mode="lines+markers",
                name=model["id"],
                line=dict(color=MODEL_COLOURS[i % len(MODEL_COLOURS)]),
                customdata=counts.reshape(-1, 1),
                marker=dict(size=np.clip(6 + 2 * np.sqrt(counts), 6, 22)),
                hovertemplate="average score %{x:.2f}<br>really fake %{y:.0%}<br>%{customdata[0]} clips"
                "<extra>" + model["id"] + "</extra>",
            )
        )
    return _layout(
        fig,
        "Average predicted chance of fake (clips grouped by score)",
        "Share of those clips that really are fake",
        height,
    )


def scatter_figure(result: Mapping, model_a: str, model_b: str, height: int = 460) -> go.Figure:
    """Clip p_fake of ``model_a`` (x) against ``model_b`` (y), one colour per true label.

    Each model's decision threshold is drawn as a line, so the two corners where the models disagree
    stand out. ``customdata`` holds each clip's path (see :func:`clip_at_point`).
    """
    models = {m["id"]: m for m in result["models"]}
    fig = go.Figure()
    for label in (0, 1):
        rows = [
            r
            for r in result["clips"]
            if r["label"] == label and r["p_fake"].get(model_a) is not None and r["p_fake"].get(model_b) is not None
        ]
        fig.add_trace(
            go.Scatter(
                x=[r["p_fake"][model_a] for r in rows],
                y=[r["p_fake"][model_b] for r in rows],
                mode="markers",
                name=f"really {LABEL_WORDS[label]}",
                customdata=[[r["path"]] for r in rows],
                marker=dict(
                    color=LABEL_COLOURS[label],
                    size=10,
                    symbol="circle" if label == 0 else "diamond",
                    line=dict(color="white", width=1),
                ),
                hovertemplate="%{customdata[0]}<br>" + model_a + " %{x:.2f}<br>" + model_b + " %{y:.2f}<extra></extra>",
            )
        )
    for model_id, axis in ((model_a, "x"), (model_b, "y")):
        if model_id in models:
            t = models[model_id]["threshold"]
            line = dict(type="line", line=dict(color="#6b7280", dash="dash", width=1), xref="x", yref="y")
            fig.add_shape(
                **line,
                **({"x0": t, "x1": t, "y0": 0, "y1": 1} if axis == "x" else {"x0": 0, "x1": 1, "y0": t, "y1": t}),
            )
    fig.update_layout(clickmode="event+select")  # a click on a dot selects it (see the page)
    return _layout(fig, f"{model_a}: chance of fake", f"{model_b}: chance of fake", height)


def clip_at_point(point: Mapping) -> str | None:
    """The clip path behind a selected scatter point (its ``customdata``), or None."""
    data = point.get("customdata")
    if isinstance(data, (list, tuple)) and data and isinstance(data[0], str):
        return data[0]
    return data if isinstance(data, str) else None
