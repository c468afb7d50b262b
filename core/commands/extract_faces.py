"""``python -m core extract-faces SRC OUT [--frames N] [--split F,F,F | --folds K] [--json]``.

Finds the faces in every clip and image under SRC/real and SRC/fake with the analyzer's own code
and saves the crops under OUT/<split>/<label>/ with a manifest.csv, splitting by source video
(never by frame). Re-running resumes; a file that fails is reported and skipped. Prints a summary
(clips and crops per split and label, share of sampled frames with a face).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from core.commands import UsageError, add_frames_option, load_settings, positive_int


def _fractions(raw: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in raw.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not three numbers like 0.7,0.15,0.15") from None
    if len(values) != 3 or min(values) < 0 or abs(sum(values) - 1) > 1e-6:
        raise argparse.ArgumentTypeError(f"{raw!r}: need three non-negative shares summing to 1")
    return values  # type: ignore[return-value]


def register(subparsers) -> None:
    """Add the ``extract-faces`` sub-command."""
    settings = load_settings()
    p = subparsers.add_parser(
        "extract-faces", help="make a face-crop dataset from labelled clips", description=__doc__.split("\n\n")[1]
    )
    p.add_argument("src", type=Path, metavar="SRC", help="folder with real/ and fake/ (clips or images)")
    p.add_argument("out", type=Path, metavar="OUT", help="dataset folder to create or resume")
    add_frames_option(p, settings)
    p.add_argument(
        "--split",
        type=_fractions,
        default=(0.7, 0.15, 0.15),
        metavar="TRAIN,VAL,TEST",
        help="shares of clips per split (default 0.7,0.15,0.15)",
    )
    p.add_argument(
        "--folds",
        type=positive_int(),
        default=None,
        metavar="K",
        help="make K cross-validation folds (splits fold0…) instead of train/val/test",
    )
    p.add_argument("--seed", type=int, default=0, help="split seed (default 0)")
    p.add_argument(
        "--tracks",
        choices=("main", "all"),
        default="main",
        help="keep only the person seen most (default) or every person",
    )
    p.add_argument("--max-side", type=positive_int(), default=320, help="largest saved crop side (default 320)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def format_summary(summary: dict) -> str:
    """The summary as a few plain lines."""
    lines = []
    for split in sorted(set(summary["sources"]) | set(summary["crops"])):
        src, crops = summary["sources"].get(split, {}), summary["crops"].get(split, {})
        lines.append(
            f"{split}: {src.get('real', 0)} real / {src.get('fake', 0)} fake sources, "
            f"{crops.get('real', 0)} real / {crops.get('fake', 0)} fake crops"
        )
    pct = summary["frames_with_face_pct"]
    lines.append(f"faces found in {pct}% of sampled frames" if pct is not None else "no frames sampled")
    if summary["no_face"]:
        lines.append(f"no face in {len(summary['no_face'])}: {', '.join(summary['no_face'])}")
    for failure in summary["failed"]:
        lines.append(f"failed: {failure['source']}: {failure['message']}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Extract the crops; returns 0 (individual failures are listed in the summary)."""
    if args.folds == 1:
        raise UsageError("--folds needs at least 2 folds")
    settings = load_settings()
    from core.data.extract import extract_faces

    def log(line: str) -> None:
        print(f"warning: {line}", file=sys.stderr)

    # Libraries sometimes print to stdout; only the summary may go there.
    with contextlib.redirect_stdout(sys.stderr):
        summary = extract_faces(
            args.src,
            args.out,
            frames=args.frames,
            seed=args.seed,
            fractions=args.split,
            folds=args.folds,
            tracks=args.tracks,
            max_side=args.max_side,
            settings=settings,
            show_progress=not args.no_progress,
            log=log,
        )
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
