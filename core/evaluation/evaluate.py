"""Evaluate models on a labelled folder of clips: ``python -m core evaluate``.

Every clip under ``DIR/real`` and ``DIR/fake`` goes through the analyzer (models loaded once),
exactly as the app would analyse it; then per model: video-level AUC, accuracy at the card's
threshold, log loss, EER, confusion matrix, ROC points, and frame-level AUC over every scored
crop. Clips with no face or that fail are listed and counted, never silently dropped: a model's
video metrics cover the clips it scored, and ``counts`` says how many that is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from core.data.datasets import LABELS, read_csv_rows
from core.errors import DFIError
from core.evaluation.metrics import binary_metrics, roc_points
from core.settings import VIDEO_EXTENSIONS, Settings, get_settings

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


def _clip_row(path: Path, label: int, data_dir: Path) -> dict:
    return {
        "path": path.relative_to(data_dir).as_posix(),
        "label": label,
        "status": "error",
        "message": None,
        "seconds": None,
        "faces": 0,
        "p_fake": {},
        "verdict": {},
    }


def evaluate(
    data_dir: Path,
    model_ids: Sequence[str] | None = None,
    frames: int = 32,
    settings: Settings | None = None,
    clips: list[tuple[Path, int]] | None = None,
    aggregation: str = "mean",
    show_progress: bool = False,
    on_clip: Callable[[dict], None] | None = None,
) -> dict:
    """Analyse every clip with the models and compute their metrics.

    Args:
        data_dir: folder with ``real/`` and ``fake/`` clips.
        model_ids: card ids; None = the registry's defaults (one per family).
        frames: frames sampled per clip.
        settings: defaults to get_settings().
        clips: evaluate only these (clip, label) pairs (e.g. from :func:`restrict_to_split`).
        aggregation: per-track aggregation used by the analyzer ("mean", "median", "max").
        show_progress: tqdm bar on stderr.
        on_clip: called with each clip's row as soon as it is done (for a live UI).

    Returns:
        The ``dfi.evaluation/1`` result (plain JSON types): ``models`` (metrics, ROC points),
        ``clips`` (one row per clip with each model's p_fake), ``skipped``, ``counts``.

    Raises:
        EvaluationError: nothing to evaluate. UnknownModelError: a bad model id.
    """
    import models
    from core.engine import analysis

    settings = settings or get_settings()
    data_dir = Path(data_dir)
    clips = clips if clips is not None else find_clips(data_dir)
    ids = list(model_ids) if model_ids else list(models.default_model_ids(settings))
    cards = [models.get_card(i, settings) for i in ids]  # a bad id fails before any slow work
    loaded = analysis.load_models(ids, settings)

    from tqdm import tqdm

    rows = []
    for path, label in tqdm(clips, desc="evaluate", unit="clip", disable=not show_progress):
        row = _clip_row(path, label, data_dir)
        start = time.perf_counter()
        try:
            report = analysis.analyze_loaded(path, loaded, frames, settings, aggregation=aggregation)
        except DFIError as exc:
            row["message"] = exc.message
        except Exception as exc:  # noqa: BLE001 — one broken clip must not end the evaluation
            row["message"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
        else:
            row["status"] = "ok" if report.status == "ok" else "no_face"
            row["faces"] = len(report.faces)
            for result in report.models:
                row["p_fake"][result.id] = result.p_fake
                row["verdict"][result.id] = result.verdict.value
                row.setdefault("_frames", {})[result.id] = [f.p_fake for f in result.frames]
                row.setdefault("_seconds", {})[result.id] = result.seconds
        row["seconds"] = round(time.perf_counter() - start, 3)
        rows.append(row)
        if on_clip:
            on_clip({k: v for k, v in row.items() if not k.startswith("_")})
    return _summarise(data_dir, cards, loaded, rows, frames, aggregation)


def _model_entry(card, item, rows: list[dict]) -> dict:
    scored = [r for r in rows if r["p_fake"].get(card.id) is not None]
    entry = {
        "id": card.id,
        "display_name": card.display_name,
        "family": card.family,
        "threshold": float(card.threshold),
        "band": [float(card.band[0]), float(card.band[1])],
        "card_metrics": card.metrics,
        "available": item.detector is not None,
        "message": item.error,
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


def _summarise(data_dir: Path, cards, loaded, rows: list[dict], frames: int, aggregation: str) -> dict:
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
        "models": [_model_entry(card, item, rows) for card, item in zip(cards, loaded)],
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
    result["clips"] = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    return result
