"""``python -m core evaluate --data DIR [--models ID,ID] [--frames N] [--json PATH|-] [--dataset D --split S] [--workers N] [--ray ADDRESS] [--out RESULTS]``.

Analyses every clip under DIR/real and DIR/fake with each model through the scan engine (worker
processes on this computer, or a Ray cluster with ``--ray``; ``--out`` keeps the per-clip reports
and resumes an interrupted evaluation) and prints, per
model, video-level AUC, accuracy at the card's threshold, log loss, EER, confusion matrix and
frame-level AUC, plus the clips that had no face or failed. ``--dataset D --split test`` keeps only
the clips that the face-crop dataset D (made from DIR) held out in that split. ``--json`` writes
the full result (per-clip scores and ROC points) for the Compare page; ``--json -`` prints only it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from core.commands import (
    UsageError,
    add_aggregation_option,
    add_frames_option,
    add_models_option,
    add_scan_backend_options,
    load_settings,
)


def register(subparsers) -> None:
    """Add the ``evaluate`` sub-command."""
    settings = load_settings()
    p = subparsers.add_parser("evaluate", help="measure models on labelled clips", description=__doc__.split("\n\n")[1])
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="folder with real/ and fake/ clips")
    add_models_option(p)
    add_frames_option(p, settings)
    add_aggregation_option(p)
    p.add_argument("--dataset", type=Path, metavar="D", help="face-crop dataset made from DIR (with --split)")
    p.add_argument("--split", metavar="S", help="evaluate only the clips D put in this split")
    p.add_argument("--json", dest="json_out", metavar="PATH|-", help="write the result JSON ('-' = stdout only)")
    add_scan_backend_options(p, settings)
    p.add_argument("--out", type=Path, metavar="RESULTS", help="keep the scan's reports here (and resume from them)")
    p.set_defaults(run=run)


def _fmt(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_result(result: dict) -> str:
    """A plain-text table of the metrics, then the skipped clips."""
    c = result["counts"]
    lines = [
        f"{c['clips']} clips ({c['real']} real, {c['fake']} fake): {c['analysed']} analysed, "
        f"{c['no_face']} without a face, {c['errors']} failed; "
        f"{_fmt(result['mean_seconds_per_clip'], 2)} s per clip"
    ]
    header = ("MODEL", "CLIPS", "AUC", "ACC@THR", "LOGLOSS", "EER", "FRAME AUC", "TN FP FN TP")
    table = [header]
    for m in result["models"]:
        v, cm = m["video"], m["video"]["confusion"]
        if not m["available"]:
            table.append((m["id"], "-", "unavailable", "", "", "", "", ""))
            continue
        table.append(
            (
                m["id"],
                str(m["clips_scored"]),
                _fmt(v["auc"]),
                f"{_fmt(v['accuracy'])} @{m['threshold']:g}",
                _fmt(v["log_loss"]),
                _fmt(v["eer"]),
                _fmt(m["frame"]["auc"]),
                f"{cm['tn']} {cm['fp']} {cm['fn']} {cm['tp']}",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in table]
    for m in result["models"]:
        if not m["available"]:
            lines.append(f"{m['id']}: {m['message']}")
    for s in result["skipped"]:
        lines.append(f"skipped {s['path']}: {s['reason']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Evaluate; returns 0 (clips without a face or that fail are reported in the result)."""
    if (args.dataset is None) != (args.split is None):
        raise UsageError("--dataset and --split go together")
    json_to_stdout = args.json_out == "-"
    if args.json_out and not json_to_stdout and not Path(args.json_out).resolve().parent.is_dir():
        raise UsageError(f"cannot write {args.json_out}: its folder does not exist")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise UsageError(f"cannot keep the reports in {args.out}: it is a file, not a folder")
    settings = load_settings()
    from core.evaluation.evaluate import find_clips, restrict_to_split
    from core.scan.evaluate import evaluate

    clips = find_clips(args.data)
    if args.dataset is not None:
        clips = restrict_to_split(clips, args.data, args.dataset, args.split)
    with contextlib.redirect_stdout(sys.stderr):  # only our own output goes to stdout
        result = evaluate(
            args.data,
            args.models,
            args.frames,
            settings,
            clips=clips,
            aggregation=args.aggregation,
            show_progress=not args.no_progress,
            workers=args.workers,
            ray_address=args.ray or None,
            out=None if args.out is None else args.out.resolve(),
        )
    text = json.dumps(result, indent=2)
    if json_to_stdout:
        print(text)
        return 0
    if args.json_out:
        Path(args.json_out).write_text(text + "\n", encoding="utf-8")
    print(format_result(result))
    return 0
