"""``python -m core analyze CLIP… [--frames N] [--models ID,ID] [--json PATH|-] [--csv PATH] [--annotate OUT.mp4] [--explain DIR]``.

Prints a short plain-words summary per clip, or with ``--json -`` the report(s) alone on stdout (one
clip: the object; several: an array). A bad clip prints one ``error:`` line and the others are still
analysed; the exit status is then 2. ``--explain DIR`` also writes, per crop and detector, a heatmap
overlay PNG of where the detector looked, with index.json and index.html (core/engine/explain_export.py);
with several clips each gets DIR/<clip stem>/.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from core.commands import (
    UsageError,
    add_aggregation_option,
    add_frames_option,
    add_models_option,
    load_settings,
    one_line,
)
from core.errors import DFIError

if TYPE_CHECKING:
    from core.types import ClipReport


def register(subparsers) -> None:
    """Add the ``analyze`` sub-command."""
    settings = load_settings()
    p = subparsers.add_parser("analyze", help="analyse clips and print verdicts", description=__doc__.split("\n\n")[1])
    p.add_argument("clips", nargs="+", metavar="CLIP", type=Path, help="video file(s): mp4, mov, m4v, avi, mkv, webm")
    add_frames_option(p, settings)
    add_models_option(p)
    add_aggregation_option(p)
    p.add_argument("--json", dest="json_out", metavar="PATH|-", help="write the report JSON ('-' = stdout only)")
    p.add_argument("--csv", dest="csv_out", type=Path, metavar="PATH", help="write per-frame scores as CSV")
    p.add_argument("--annotate", type=Path, metavar="OUT.mp4", help="write the sampled frames with labelled face boxes")
    p.add_argument(
        "--explain",
        type=Path,
        metavar="DIR",
        help="write a heatmap overlay PNG per face crop and detector, plus index.json/index.html",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Analyse each clip; returns 0 when all were analysed, 2 when any could not be."""
    settings = load_settings()
    json_to_stdout = args.json_out == "-"
    for out in (None if json_to_stdout else args.json_out, args.csv_out, args.annotate, args.explain):
        if out is not None and not Path(out).resolve().parent.is_dir():
            raise UsageError(f"cannot write {out}: its folder does not exist")
    if args.explain is not None and args.explain.exists() and not args.explain.is_dir():
        raise UsageError(f"cannot write heatmaps into {args.explain}: it is a file, not a folder")

    import models
    from core.engine import analysis  # TensorFlow loads here, not at parser build
    from core.engine import report as report_io

    model_ids = args.models if args.models is not None else models.default_model_ids(settings)
    for model_id in model_ids:
        models.get_card(model_id, settings)  # an unknown id is the caller's mistake: fail before any clip

    several = len(args.clips) > 1
    reports, failed = [], 0
    for clip in args.clips:
        try:
            # Libraries sometimes print to stdout; only our own output may go there.
            with contextlib.redirect_stdout(sys.stderr):
                report = analysis.analyze(clip, model_ids, args.frames, settings, aggregation=args.aggregation)
        except DFIError as exc:
            _error(exc.message, clip, several)
            failed += 1
            continue
        reports.append(report)
        if not json_to_stdout:
            print(summary(report), flush=True)
        if args.annotate is not None:
            out = _annotated_path(args.annotate, clip, several)
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    report_io.write_annotated_video(report, clip, out, settings)
            except (DFIError, OSError) as exc:
                _error(exc.message if isinstance(exc, DFIError) else f"cannot write {out}: {exc}", clip, several)
                failed += 1
        if args.explain is not None:
            out_dir = args.explain / clip.stem if several else args.explain
            try:
                with contextlib.redirect_stdout(sys.stderr):
                    written = _explain(report, out_dir, settings)
            except (DFIError, OSError) as exc:
                _error(exc.message if isinstance(exc, DFIError) else f"cannot write {out_dir}: {exc}", clip, several)
                failed += 1
            else:
                if not json_to_stdout:
                    print(f"  heatmaps: {written} files in {out_dir}", flush=True)

    if reports and args.json_out is not None:
        text = report_io.report_to_json(reports if several else reports[0])
        if json_to_stdout:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
        else:
            _write(Path(args.json_out), lambda: Path(args.json_out).write_text(text + "\n", encoding="utf-8"))
    if reports and args.csv_out is not None:
        _write(args.csv_out, lambda: report_io.write_csv(reports, args.csv_out))
    return 2 if failed else 0


def _explain(report: ClipReport, out_dir: Path, settings) -> int:
    """Heatmaps of every model that scored the report, written into ``out_dir``; the file count."""
    import models
    from core.engine import explain_export
    from core.engine.report_queries import scored_models

    # load_model returns the detectors the analysis just used (cached per process): no reload.
    detectors = {r.id: models.load_model(r.id, settings) for r in scored_models(report)}
    explanations = explain_export.explain_report(report, detectors)
    return len(explain_export.write_explanations(report, explanations, out_dir))


def summary(report: ClipReport) -> str:
    """A few plain lines about one report: verdict per model, faces found, people, seconds."""
    clip = report.clip
    n = len(report.sampling.frame_indices)
    with_face = len({f.frame_index for f in report.faces})
    people = len(report.tracks) if report.tracks else len({f.track_id for f in report.faces})
    lines = [
        f"{clip.name}  ({clip.duration_s:.1f} s, {clip.width}x{clip.height}, {clip.fps:.3g} fps)",
        f"  faces found in {with_face}/{n} sampled frames, "
        + (f"{people} {'person' if people == 1 else 'people'}" if people else "no face found"),
    ]
    width = max((len(m.display_name) for m in report.models), default=0)
    for m in report.models:
        if m.p_fake is not None:
            detail = (
                f"{100 * m.p_fake:5.1f}% fake  (FAKE at >= {100 * m.band[1]:.0f}%, REAL at <= {100 * m.band[0]:.0f}%)"
            )
        elif m.verdict.value == "NO_FACE":
            detail = "no score: no face to judge"
        else:
            detail = m.message or "could not run"
        lines.append(f"  {m.display_name:<{width}}  {m.verdict.value:<11}  {detail}")
    lines.append(f"  analysed in {report.timings.total_s:.2f} s")
    return "\n".join(lines)


def _error(message: str, clip: Path, several: bool) -> None:
    # With several clips, say which one failed unless the message already names it.
    prefix = f"{clip.name}: " if several and clip.name not in message else ""
    print(f"error: {prefix}{one_line(message)}", file=sys.stderr)


def _annotated_path(out: Path, clip: Path, several: bool) -> Path:
    # With several clips, each gets its own file beside OUT: OUT_stem-<clip stem>.mp4.
    return out.with_name(f"{out.stem}-{clip.stem}{out.suffix or '.mp4'}") if several else out


def _write(path: Path, write) -> None:
    try:
        write()
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
