"""The Train page's learning curves: loss, accuracy and AUC per epoch, training and validation.

No Streamlit here (core/ never imports it); the page passes the figure to ``st.plotly_chart``.
"""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

PANELS = (("loss", "Loss (lower is better)"), ("accuracy", "Accuracy"), ("auc", "AUC (1 = perfect)"))
TRAIN_COLOUR, VAL_COLOUR = "#2563eb", "#db2777"


def _values(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [
        (r["epoch"], float(r[key]))
        for r in rows
        if isinstance(r.get(key), (int, float)) and math.isfinite(r[key]) and isinstance(r.get("epoch"), int)
    ]
    return [p[0] for p in points], [p[1] for p in points]


def training_curves_figure(rows: list[dict]) -> go.Figure:
    """Three panels side by side; training solid blue, validation dashed pink, one point per epoch.

    Args:
        rows: metrics.jsonl rows (``epoch``, ``loss``, ``val_loss``, ``accuracy``, ``auc``…).
    """
    figure = make_subplots(
        rows=1, cols=len(PANELS), subplot_titles=[title for _, title in PANELS], horizontal_spacing=0.07
    )
    for col, (key, _) in enumerate(PANELS, start=1):
        for prefix, name, colour, dash in (
            ("", "training", TRAIN_COLOUR, "solid"),
            ("val_", "validation", VAL_COLOUR, "dash"),
        ):
            x, y = _values(rows, prefix + key)
            if not x:
                continue
            figure.add_trace(
                go.Scatter(
                    x=x,
                    y=y,
                    name=name,
                    mode="lines+markers",
                    legendgroup=name,
                    showlegend=col == 1,
                    line={"color": colour, "dash": dash},
                    hovertemplate=f"epoch %{{x}}<br>{name} {key} %{{y:.3f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        figure.update_xaxes(title_text="epoch", dtick=1, row=1, col=col)
        if key != "loss":
            figure.update_yaxes(range=[0, 1.02], row=1, col=col)
    figure.update_layout(
        height=300, margin={"l": 40, "r": 10, "t": 40, "b": 40}, legend={"orientation": "h", "y": -0.25}
    )
    return figure
