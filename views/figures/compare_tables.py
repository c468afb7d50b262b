"""Tables the Compare page shows from a ``dfi.evaluation/1`` result: metrics side by side, per clip, CSV.

Plain Python (no Streamlit): the metrics table has one row per measure and one column per model, so
models are read side by side; the per-clip table has one row per clip, including the clips with no
face or that failed (never dropped), with each model's p_fake and verdict.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping

STATUS_WORDS = {"ok": "analysed", "no_face": "no face found", "error": "failed"}
LABEL_WORDS = {0: "REAL", 1: "FAKE"}
UNAVAILABLE = "unavailable"
# The rows of the metrics table, in order; _column fills one model's cells in the same order.
MEASURES = (
    "Clips scored",
    "Video AUC (1 = perfect, 0.5 = coin toss)",
    "Accuracy at the model's threshold",
    "Log loss (lower is better)",
    "Equal error rate (lower is better)",
    "Frame AUC",
    "Seconds per clip (this model)",
    "Real called real / real called fake / fake missed / fake caught",
)


def _num(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _column(model: Mapping, total_clips: int) -> list[str]:
    """One model's cells, in the order of :data:`MEASURES`."""
    if not model["available"]:
        return [UNAVAILABLE] * len(MEASURES)
    video, cm = model["video"], model["video"]["confusion"]
    accuracy = "—" if video["accuracy"] is None else f"{video['accuracy']:.3f} (at {model['threshold']:.2f})"
    return [
        f"{model['clips_scored']} of {total_clips}",
        _num(video["auc"]),
        accuracy,
        _num(video["log_loss"]),
        _num(video["eer"]),
        _num(model["frame"]["auc"]),
        _num(model["mean_classify_seconds"], 2),
        f"{cm['tn']} / {cm['fp']} / {cm['fn']} / {cm['tp']}",
    ]


def metrics_table(result: Mapping) -> list[dict[str, str]]:
    """Rows ``{"Measure": ..., "<model id>": ...}``: one per measure, one column per model."""
    columns = {m["id"]: _column(m, result["counts"]["clips"]) for m in result["models"]}
    return [
        {"Measure": measure, **{mid: cells[i] for mid, cells in columns.items()}} for i, measure in enumerate(MEASURES)
    ]


def clip_table(result: Mapping) -> list[dict]:
    """One row per clip: name, true label, what happened, each model's p_fake and verdict, seconds, note.

    p_fake values stay numbers (None when the model gave none) so the table sorts by them.
    """
    ids = [m["id"] for m in result["models"]]
    rows = []
    for clip in result["clips"]:
        row = {
            "Clip": clip["path"],
            "Truth": LABEL_WORDS[clip["label"]],
            "Result": STATUS_WORDS.get(clip["status"], clip["status"]),
        }
        for mid in ids:
            row[f"{mid} p_fake"] = clip["p_fake"].get(mid)
            row[f"{mid} verdict"] = clip["verdict"].get(mid, "—")
        row["Seconds"] = clip["seconds"]
        row["Note"] = clip["message"] or (
            "no face was found in any sampled frame" if clip["status"] == "no_face" else ""
        )
        rows.append(row)
    return rows


def disagreements(result: Mapping, model_a: str, model_b: str) -> int:
    """How many clips the two models put on opposite sides of their thresholds."""
    thresholds = {m["id"]: m["threshold"] for m in result["models"]}
    count = 0
    for clip in result["clips"]:
        a, b = clip["p_fake"].get(model_a), clip["p_fake"].get(model_b)
        if a is not None and b is not None and (a >= thresholds[model_a]) != (b >= thresholds[model_b]):
            count += 1
    return count


def clips_csv(result: Mapping) -> str:
    """The per-clip results as CSV: path, label (1 = FAKE), status, message, seconds, faces, then
    ``p_fake:<id>`` and ``verdict:<id>`` per model (empty when the model gave none)."""
    ids = [m["id"] for m in result["models"]]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(
        ["path", "label", "status", "message", "seconds", "faces"]
        + [f"{kind}:{mid}" for mid in ids for kind in ("p_fake", "verdict")]
    )
    for clip in result["clips"]:
        cells = [clip["path"], clip["label"], clip["status"], clip["message"] or "", clip["seconds"], clip["faces"]]
        for mid in ids:
            p = clip["p_fake"].get(mid)
            cells += ["" if p is None else f"{p:.6f}", clip["verdict"].get(mid, "")]
        writer.writerow(cells)
    return out.getvalue()
