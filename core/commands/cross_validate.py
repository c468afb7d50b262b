"""``python -m core cross-validate --data DATASET --arch A --tag T --out DIR [--by-source] [train flags]``.

Cross-validation of one training recipe: for each fold of a face-crop dataset made with
``extract-faces --folds K`` (or, with --by-source, each source folder: real/<source>/ and
fake/<source>/), trains on the rest and scores the held-out clips, then prints the pooled video
AUC, accuracy, log loss and EER (by source: per source too, with intervals, and the calibration
and uncertain band fitted on the out-of-source scores), and writes ``DIR/crossval.json``. The fold
models stay in DIR; nothing is registered.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.commands import load_settings
from core.commands.train import register_spec_flags, spec_from_args


def register(subparsers) -> None:
    """Add the ``cross-validate`` sub-command."""
    p = subparsers.add_parser(
        "cross-validate", help="leave-clips-out cross-validation of a recipe", description=__doc__.split("\n\n")[1]
    )
    register_spec_flags(p, exclude=("--out", "--cards-dir", "--weights-dir", "--val-split", "--train-splits"))
    p.add_argument(
        "--out",
        dest="cv_out",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder for the fold runs and crossval.json",
    )
    p.add_argument(
        "--folds",
        default=None,
        metavar="F,F",
        help="folds (or with --by-source, sources) to hold out in turn (default all)",
    )
    p.add_argument(
        "--by-source", action="store_true", help="hold out one source folder at a time (real/<source>/, fake/<source>/)"
    )
    p.add_argument("--json", dest="json_out", action="store_true", help="print the result JSON")
    p.set_defaults(run=run)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def run(args: argparse.Namespace) -> int:
    """Cross-validate; prints a summary (or the JSON) and returns 0."""
    settings = load_settings()
    spec = spec_from_args(args)
    from core.evaluation.crossval import cross_validate

    folds = [f.strip() for f in args.folds.split(",") if f.strip()] if args.folds else None
    result = cross_validate(
        spec,
        args.cv_out,
        folds,
        settings,
        on_fold=lambda k, n, fold: print(f"fold {k + 1}/{n}: holding out {fold}", flush=True),
        by_source=args.by_source,
    )
    if args.json_out:
        print(json.dumps(result, indent=2))
        return 0
    v = result["video"]
    print(result["protocol"])
    ci = result["video_auc_ci95"]
    ci_text = f" (95% interval {ci[0]:.2f}-{ci[1]:.2f})" if ci else ""
    print(
        f"video AUC {_fmt(v['auc'])}{ci_text} on {v['n']} clips ({v['n_real']} real, {v['n_fake']} fake); "
        f"accuracy {_fmt(v['accuracy'])} at {v['threshold']:g}; log loss {_fmt(v['log_loss'])}; "
        f"EER {_fmt(v['eer'])}; frame AUC {_fmt(result['frame']['auc'])}"
    )
    print(
        ("per source: " if args.by_source else "per fold: ")
        + ", ".join(f"{f['fold']} {_fmt(f['auc'])}" for f in result["folds"])
    )
    if args.by_source:
        fit = result.get("calibrated_crossfit") or {}
        band = result["band"]["band"]
        print(
            f"calibrated (fitted on the other sources): ECE {_fmt(fit.get('ece'))}, uncertain "
            f"{_fmt(fit.get('uncertain_share'))}, FAKE/REAL verdicts right {_fmt(fit.get('verdict_accuracy'))}; "
            f"band for a card: {band[0]:.3f}-{band[1]:.3f}"
        )
    print(f"written: {args.cv_out / 'crossval.json'}")
    return 0
