"""Cross-validation of a training recipe on a face-crop dataset: leave clips out, or whole sources.

A face-crop dataset made with ``extract-faces --folds K`` puts every source clip (with its
FaceForensics++ partners) in one of K folds. For each fold this trains the recipe on the other
folds and scores the held-out fold's clips, so every clip gets exactly one score from a model
that never saw it, nor any clip of its source. The pooled out-of-fold scores give the video-level
metrics a card can honestly quote for that recipe.

No checkpoint is picked on the held-out fold (that would leak it into the score): each fold
trains with no validation split, so it keeps its epoch with the lowest training loss.
Clip scores are the mean of the clip's crop scores, as ``analyze`` aggregates a person's frames;
the crops are the analyzer's own (``extract-faces`` uses the same video → faces → crop code).

``by_source`` holds out one *collection* at a time instead (a whole dataset or generator family,
the sub-folder under ``real/`` and ``fake/``, see :func:`core.data.datasets.collection_of`): the model
that scores a clip never saw a clip of its source, so a recipe that learnt a source's format
rather than manipulation is caught. That is the figure a card quotes first; see
:mod:`core.evaluation.crossval_report` for its per-source and calibrated summary.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from core.data.datasets import read_manifest
from core.evaluation.crossval_report import CROSSVAL_SCHEMA, summarise_by_source
from core.evaluation.metrics import auc_interval, binary_metrics, roc_points
from core.settings import Settings, get_settings
from core.training.networks import TrainError
from core.training.spec import TrainSpec, resolve
from models.architectures import FAMILY_OF


def fold_names(rows: list[dict], held_out: list[str] | None) -> tuple[list[str], list[str]]:
    """(every ``fold*`` split of the dataset, the folds to hold out in turn: given, or all).

    Holding out only some folds (``--folds fold0``) trains those models alone: cheaper, for
    networks too slow to train K times, at the cost of fewer clips scored.

    Raises:
        TrainError: fewer than two folds, or a named fold the dataset lacks.
    """
    splits = sorted({r["split"] for r in rows})
    folds = [s for s in splits if s.startswith("fold")]
    if len(folds) < 2:
        raise TrainError(
            f"cross-validation needs a dataset made with --folds 2 or more (its splits: {', '.join(splits)})"
        )
    missing = [f for f in (held_out or []) if f not in folds]
    if missing:
        raise TrainError(f"fold(s) {', '.join(missing)} not in the dataset (its folds: {', '.join(folds)})")
    return folds, list(held_out or folds)


def collection_names(rows: list[dict], held_out: list[str] | None) -> tuple[list[str], list[str]]:
    """(every collection of the dataset, the collections to hold out in turn: given, or all).

    Raises:
        TrainError: clips outside any collection, fewer than two collections, a named collection
            the dataset lacks, or a source group (a fake and its original) split over collections.
    """
    loose = sorted({r["source"] for r in rows if not r["collection"]})
    if loose:
        raise TrainError(
            f"--by-source needs every clip inside a source folder (real/<source>/…, "
            f"fake/<source>/…); {len(loose)} sit directly in real/ or fake/, e.g. {loose[0]}"
        )
    names = sorted({r["collection"] for r in rows})
    if len(names) < 2:
        raise TrainError(f"--by-source needs at least two source folders; the dataset has {', '.join(names)}")
    missing = [c for c in (held_out or []) if c not in names]
    if missing:
        raise TrainError(f"source(s) {', '.join(missing)} not in the dataset (its sources: {', '.join(names)})")
    homes: dict[str, set[str]] = defaultdict(set)
    for r in rows:
        homes[r["group"]].add(r["collection"])
    split = sorted(g for g, c in homes.items() if len(c) > 1)
    if split:
        raise TrainError(
            f"source group {split[0]} has clips in several source folders "
            f"({', '.join(sorted(homes[split[0]]))}); keep a fake and its original together"
        )
    return names, list(held_out or names)


def score_crops(card_path: Path, weights_dir: Path, rows: list[dict], settings: Settings) -> np.ndarray:
    """p_fake for each crop row, through the registry's own inference path (Detector.predict)."""
    import models
    from core.training.crops import load_rgb
    from models.cards import read_card

    card = read_card(card_path, FAMILY_OF)
    detector = models.build_detector(card, settings=dataclasses.replace(settings, weights_dir=weights_dir))
    scores = []
    for start in range(0, len(rows), 64):  # bounded memory; one batch per call as in analyze
        scores.append(detector.predict([load_rgb(r["file"]) for r in rows[start : start + 64]]))
    return np.concatenate(scores) if scores else np.zeros(0)


def clip_scores(rows: list[dict], crop_p: np.ndarray, fold: str, keep_crops: bool = False) -> list[dict]:
    """One row per source clip: label, fold, number of crops, mean crop p_fake.

    ``keep_crops`` also keeps the crop scores (``crop_p``) and the clip's collection, which the
    by-source summary needs to calibrate at crop level.
    """
    by_clip: dict[str, list[float]] = defaultdict(list)
    labels, collections = {}, {}
    for row, p in zip(rows, crop_p):
        by_clip[row["source"]].append(float(p))
        labels[row["source"]] = int(row["label"])
        collections[row["source"]] = row.get("collection", "")
    out = []
    for s, ps in sorted(by_clip.items()):
        clip = {"source": s, "label": labels[s], "fold": fold, "crops": len(ps), "p_fake": float(np.mean(ps))}
        if keep_crops:
            clip.update(collection=collections[s], crop_p=[round(p, 6) for p in ps])
        out.append(clip)
    return out


def summarise(
    spec: TrainSpec, folds: list[str], clips: list[dict], frames: list[tuple[int, float]], fold_runs: list[dict]
) -> dict:
    """The cross-validation result: pooled out-of-fold video and frame metrics, per-fold AUCs."""
    y = [c["label"] for c in clips]
    p = [c["p_fake"] for c in clips]
    per_fold = []
    for fold in folds:
        held = [c for c in clips if c["fold"] == fold]
        m = binary_metrics([c["label"] for c in held], [c["p_fake"] for c in held], spec.threshold)
        per_fold.append({"fold": fold, "clips": len(held), "auc": m["auc"], "accuracy": m["accuracy"]})
    fold_aucs = [f["auc"] for f in per_fold if f["auc"] is not None]
    return {
        "schema": CROSSVAL_SCHEMA,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "protocol": (
            f"leave-clips-out cross-validation on {Path(spec.data).name}, folds held out: "
            f"{', '.join(folds)}: "
            "each clip scored by a model trained without its fold (FaceForensics++ fakes "
            "stay in their original's fold); clip score = mean crop p_fake"
        ),
        "spec": spec.to_dict(),
        "folds": per_fold,
        "fold_auc_mean": float(np.mean(fold_aucs)) if fold_aucs else None,
        "fold_auc_sd": float(np.std(fold_aucs)) if fold_aucs else None,
        "video": binary_metrics(y, p, spec.threshold),
        "video_auc_ci95": auc_interval(y, p),
        "frame": binary_metrics([label for label, _ in frames], [q for _, q in frames], spec.threshold),
        "roc": roc_points(y, p),
        "runs": fold_runs,
        "clips": clips,
    }


def cross_validate(
    spec: TrainSpec,
    out: Path,
    folds: list[str] | None = None,
    settings: Settings | None = None,
    on_fold: Callable[[int, int, str], None] | None = None,
    by_source: bool = False,
) -> dict:
    """Train ``spec`` once per fold (or source) with it held out; score the held-out clips; pool.

    Args:
        spec: the recipe (its tag gets ``-cvK`` per fold; its splits are set per fold).
        out: folder for the fold runs, their cards and weights, and ``crossval.json``.
        folds: the folds (or, with ``by_source``, the sources) to hold out; default all of them.
        settings: paths; defaults to get_settings().
        on_fold: called as on_fold(k, n, fold) before each fold trains (progress).
        by_source: hold out whole collections (source folders) instead of ``fold*`` splits.

    Returns:
        The result of :func:`summarise` (or :func:`core.evaluation.crossval_report.summarise_by_source`),
        also written to ``out/crossval.json``.

    Raises:
        TrainError / DFIError: a bad spec or dataset, or a fold whose training failed.
    """
    from core.training.trainer import run_training

    settings = settings or get_settings()
    spec = resolve(spec)
    data = Path(spec.data).expanduser()
    rows = read_manifest(data)
    if by_source:
        _, folds = collection_names(rows, folds)
        all_splits = sorted({r["split"] for r in rows})
    else:
        all_folds, folds = fold_names(rows, folds)
    out.mkdir(parents=True, exist_ok=True)
    clips: list[dict] = []
    frames: list[tuple[int, float]] = []
    fold_runs = []
    for k, fold in enumerate(folds):
        if on_fold:
            on_fold(k, len(folds), fold)
        if by_source:
            # Every split trains; only the held-out source is left out (no validation split, so
            # no checkpoint is ever chosen on the source being scored).
            held_rows = dict(train_splits=all_splits, exclude_collections=[fold])
        else:
            held_rows = dict(train_splits=[f for f in all_folds if f != fold])
        fold_spec = dataclasses.replace(
            spec,
            tag=f"{spec.tag}-cv{k}",
            val_split="",
            **held_rows,
            out=str(out / f"cv{k}"),
            cards_dir=str(out / "cards"),
            weights_dir=str(out / "weights"),
        )
        result = run_training(fold_spec, settings)
        if result.state != "succeeded":
            raise TrainError(f"fold {fold} ended {result.state}; see {result.run_dir / 'train.log'}")
        held = [r for r in rows if (r["collection"] if by_source else r["split"]) == fold]
        crop_p = score_crops(result.card_path, out / "weights", held, settings)
        frames += [(int(r["label"]), float(q)) for r, q in zip(held, crop_p)]
        clips += clip_scores(held, crop_p, fold, keep_crops=by_source)
        fold_runs.append(
            {
                "fold": fold,
                "run": str(result.run_dir),
                "card": str(result.card_path),
                "weights": str(result.weights_path),
                "best_epoch": result.best_epoch,
            }
        )
        # Written after every fold: a long cross-validation cut short keeps what it measured.
        (out / "partial.json").write_text(json.dumps({"clips": clips, "runs": fold_runs}) + "\n", encoding="utf-8")
    if by_source:
        summary = summarise_by_source(spec, folds, clips, fold_runs)
    else:
        summary = summarise(spec, folds, clips, frames, fold_runs)
    (out / "crossval.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
