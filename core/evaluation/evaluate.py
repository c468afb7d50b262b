"""Evaluation of models on a labelled folder of clips (``python -m core evaluate``): the measuring half.

Which clips (``DIR/real``, ``DIR/fake``) and, once each has been analysed, per model: video-level
AUC, accuracy at the card's threshold, log loss, EER, confusion matrix, ROC points, and frame-level
AUC over every scored crop. Clips with no face or that fail are listed and counted, never silently dropped: a model's
video metrics cover the clips it scored, and ``counts`` says how many that is.

The analysing half is the scan engine: :func:`core.scan.evaluate.evaluate` scans the clips (on
this computer or a Ray cluster, exactly as the app would analyse each one) and hands every clip's
report to :func:`clip_row`, then :func:`summarise` measures. It lives above this layer because the
scan's backends (the jobs layer's Ray helpers) do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from core.data.datasets import LABELS, read_csv_rows
from core.errors import DFIError
from core.evaluation.metrics import binary_metrics, roc_points
from core.settings import VIDEO_EXTENSIONS

EVALUATION_SCHEMA = "dfi.evaluation/1"


class EvaluationError(DFIError):
    """The folder holds nothing to evaluate, or the dataset restriction does not fit it."""


def find_clips(data_dir: Path) -> list[tuple[Path, int]]:
    """(clip, label) for every video under ``data_dir/real`` and ``data_dir/fake``, sorted.

    Raises:
        EvaluationError: no real/ or fake/ folder, or no clip in them.
    """
    data_dir = Path(data_dir)
    clips = [
        (p, label)
        for name, label in LABELS.items()
        if (data_dir / name).is_dir()
        for p in sorted((data_dir / name).rglob("*"))
        if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
    ]
    if not clips:
        raise EvaluationError(f"no clips ({', '.join(VIDEO_EXTENSIONS)}) under {data_dir}/real or {data_dir}/fake")
    return clips


def restrict_to_split(
    clips: list[tuple[Path, int]], data_dir: Path, dataset_dir: Path, split: str
) -> list[tuple[Path, int]]:
    """Keep the clips a face-crop dataset (made from ``data_dir``) put in ``split``: held-out ones.

    Raises:
        EvaluationError: the dataset has no sources.csv, or no clip of ``data_dir`` is in ``split``.
    """
    rows = read_csv_rows(Path(dataset_dir) / "sources.csv")
    if not rows:
        raise EvaluationError(f"{dataset_dir} has no sources.csv (make it with extract-faces)")
    wanted = {r["source"] for r in rows if r["split"] == split}
    kept = [(p, y) for p, y in clips if p.relative_to(data_dir).as_posix() in wanted]
    if not kept:
        splits = sorted({r["split"] for r in rows})
        raise EvaluationError(
            f"no clip of {data_dir} is in split {split!r} of {dataset_dir} (splits: {', '.join(splits)})"
        )
    return kept


def clip_row(
    path: Path, label: int, data_dir: Path, status: str, report: dict | None, error: str | None, seconds
) -> dict:
    """One clip's evaluation row from its scan outcome (core.scan): status, its error, its report.

    Args:
        path: the clip; ``data_dir``: the labelled folder it is in (the row names it relative to that).
        label: 0 real, 1 fake.
        status: "ok", "no_face" or "error" (a scan row's status).
        report: the clip's dfi.report/1 dict, None for an error.
        error: the one-line error of a clip that could not be analysed.
        seconds: the clip's wall seconds, as the scan measured them.
    """
    row = {
        "path": Path(path).relative_to(data_dir).as_posix(),
        "label": label,
        "status": status,
        "message": error,
        "seconds": None if seconds is None else round(float(seconds), 3),
        "faces": 0,
        "p_fake": {},
        "verdict": {},
    }
    if report is not None:
        row["faces"] = len(report.get("faces", []))
        for result in report.get("models", []):
            row["p_fake"][result["id"]] = result["p_fake"]
            row["verdict"][result["id"]] = result["verdict"]
            row.setdefault("_frames", {})[result["id"]] = [f["p_fake"] for f in result.get("frames", [])]
            row.setdefault("_seconds", {})[result["id"]] = result.get("seconds", 0.0)
            if result["verdict"] == "UNAVAILABLE":
                row.setdefault("_unavailable", {})[result["id"]] = result.get("message")
    return row


def public_row(row: dict) -> dict:
    """The row without its private working fields (frame scores, per-model seconds)."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _model_entry(card, rows: list[dict]) -> dict:
    scored = [r for r in rows if r["p_fake"].get(card.id) is not None]
    unavailable = [r["_unavailable"][card.id] for r in rows if card.id in r.get("_unavailable", {})]
    available = bool(scored) or not unavailable
    entry = {
        "id": card.id,
        "display_name": card.display_name,
        "family": card.family,
        "threshold": float(card.threshold),
        "band": [float(card.band[0]), float(card.band[1])],
        "card_metrics": card.metrics,
        "available": available,
        "message": None if available else unavailable[0],
        "clips_scored": len(scored),
    }
    labels = [r["label"] for r in scored]
    scores = [r["p_fake"][card.id] for r in scored]
    entry["video"] = binary_metrics(labels, scores, card.threshold)
    entry["roc"] = roc_points(labels, scores)
    frame_labels = [r["label"] for r in scored for _ in r["_frames"][card.id]]
    frame_scores = [p for r in scored for p in r["_frames"][card.id]]
    frame = binary_metrics(frame_labels, frame_scores, card.threshold)
    entry["frame"] = {"n": frame["n"], "auc": frame["auc"], "accuracy": frame["accuracy"]}
    seconds = [r["_seconds"][card.id] for r in scored]
    entry["mean_classify_seconds"] = round(sum(seconds) / len(seconds), 4) if seconds else None
    return entry


def summarise(data_dir: Path, cards, rows: list[dict], frames: int, aggregation: str) -> dict:
    """The ``dfi.evaluation/1`` result of the clips' rows (see :func:`clip_row`) for the models' cards.

    A model counts as unavailable when it scored no clip and the reports say it could not run (its
    weights are missing or broken, as every worker that loaded it found); the message is theirs.
    """
    ok = [r for r in rows if r["status"] == "ok"]
    timed = [r["seconds"] for r in rows if r["status"] != "error"]
    result = {
        "schema": EVALUATION_SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": str(data_dir),
        "frames": int(frames),
        "aggregation": aggregation,
        "counts": {
            "clips": len(rows),
            "real": sum(r["label"] == 0 for r in rows),
            "fake": sum(r["label"] == 1 for r in rows),
            "analysed": len(ok),
            "no_face": sum(r["status"] == "no_face" for r in rows),
            "errors": sum(r["status"] == "error" for r in rows),
        },
        "mean_seconds_per_clip": round(sum(timed) / len(timed), 3) if timed else None,
        "models": [_model_entry(card, rows) for card in cards],
        "skipped": [
            {
                "path": r["path"],
                "label": r["label"],
                "status": r["status"],
                "reason": r["message"] or "no face was found in any sampled frame",
            }
            for r in rows
            if r["status"] != "ok"
        ],
    }
    result["clips"] = [public_row(r) for r in rows]
    return result
