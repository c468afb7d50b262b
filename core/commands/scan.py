"""``python -m core scan SRC --out RESULTS [--models ID,ID] [--frames N] [--workers N] [--ray ADDRESS]``.

Analyses every clip of SRC (a folder, searched recursively; a text file listing clips; or a .zip /
.tar archive) once, identified by its sha256, and writes one dfi.report/1 JSON per clip plus a
results table (results.parquet, results.csv) into RESULTS as clips finish. Running it again on the
same RESULTS resumes: clips already there are skipped. A clip that cannot be read is a row with its
error, not a stop. ``--ray`` (or ``DFI_RAY_ADDRESS``) runs the scan on that Ray cluster; RESULTS and
SRC must then be paths the cluster's head node reaches too.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
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
    """Add the ``scan`` sub-command."""
    settings = load_settings()
    p = subparsers.add_parser("scan", help="analyse a whole folder of clips", description=__doc__.split("\n\n")[1])
    p.add_argument("src", type=Path, metavar="SRC", help="folder, list file (one clip per line) or .zip/.tar archive")
    p.add_argument("--out", type=Path, required=True, metavar="RESULTS", help="results folder (resumed when it exists)")
    add_models_option(p)
    add_frames_option(p, settings)
    add_aggregation_option(p)
    add_scan_backend_options(p, settings)
    p.set_defaults(run=run)


def _bar(enabled: bool):
    """A tqdm bar on stderr and the progress callback that moves it (clips/min, ETA)."""
    from tqdm import tqdm

    # The rate shown is clips/min of the clips analysed now (tqdm's own would count resumed ones).
    bar_format = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} clips [{elapsed}{postfix}]"
    bar = tqdm(total=0, desc="scan", disable=not enabled, file=sys.stderr, dynamic_ncols=True, bar_format=bar_format)

    def on_progress(p) -> None:
        bar.total = p.total
        bar.n = p.done
        rate = p.clips_per_min
        eta = p.eta_s
        bar.set_postfix_str(
            (f"{rate:.1f} clips/min" if rate else "starting")
            + (f", ETA {eta / 60:.1f} min" if eta is not None else "")
            + (f", {p.errors} errors" if p.errors else ""),
            refresh=False,
        )
        bar.refresh()

    return bar, on_progress


def summary_text(summary) -> str:
    """The plain lines printed at the end of a scan."""
    rate = summary.clips_per_min
    lines = [
        f"{summary.status}: {summary.total} clips, {summary.ok} scored, {summary.no_face} without a face, "
        f"{summary.errors} failed; {summary.analysed_now} analysed now in {summary.seconds:.0f} s"
        + (f" ({rate:.1f} clips/min)" if rate else "")
        + (f", {summary.reused} already in the results or duplicates" if summary.reused else ""),
        f"results: {summary.out}/results.parquet, results.csv, reports/<sha256>.json",
    ]
    if summary.status != "finished":
        lines.append("run the same command again to scan the rest")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Scan; returns 0 when every clip has a row (bad clips are rows too), 130 when stopped."""
    settings = load_settings()
    if args.out.exists() and not args.out.is_dir():
        raise UsageError(f"cannot write results into {args.out}: it is a file, not a folder")
    if not args.out.resolve().parent.is_dir():
        raise UsageError(f"cannot write results into {args.out}: its folder does not exist")
    from core.scan.engine import ScanRequest, run_scan

    stop = threading.Event()
    # SIGTERM (the Scan page's Stop, a job's cancel) ends the scan cleanly: what is done is kept.
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    request = ScanRequest(
        out=args.out.resolve(),
        src=args.src.resolve(),
        model_ids=None if args.models is None else tuple(args.models),
        frames=args.frames,
        aggregation=args.aggregation,
        workers=args.workers,
        ray_address=args.ray or None,
    )
    bar, on_progress = _bar(not args.no_progress)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # only our own output goes to stdout
            summary = run_scan(request, settings, on_progress, stop)
    finally:
        bar.close()
        signal.signal(signal.SIGTERM, previous)
    print(summary_text(summary))
    return 0 if summary.status == "finished" else 130
