"""Frames with a face, per shared clip and per source: what a change to face detection costs.

Measure with one checkout's code (``--repo``, default this one), then compare two measurements:

    python scripts/face_rate_table.py measure --repo /tmp/before OUT_before.json [--shared ../shared/data]
    python scripts/face_rate_table.py measure OUT_after.json
    python scripts/face_rate_table.py compare OUT_before.json OUT_after.json [--markdown table.md]

``measure`` samples 32 frames of every clip under clips/, facecrop-clips/, generators/ and more/
the way ``analyze`` does (``core.engine.video.read_clip``, ``core.engine.faces.detect_boxes``) and
records, per clip, the frames with a face and the largest face side in each frame (frame pixels).
``compare`` prints one row per source (folder and the clip name's prefix, e.g. ``clips/dfdc``) and
every clip that lost frames; it exits 1 when a clip lost more than ``--max-loss`` frames (1 in 32).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

FOLDERS = ("clips", "facecrop-clips", "generators", "more")
SUFFIXES = {".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm"}


def shared_clips(shared: Path) -> list[Path]:
    return sorted(p for f in FOLDERS for p in (shared / f).rglob("*") if p.suffix.lower() in SUFFIXES)


def source_of(shared: Path, clip: Path) -> str:
    return f"{clip.relative_to(shared).parts[0]}/{clip.name.split('_')[0]}"


def measure(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(args.repo.resolve()))
    from core.engine import faces, video  # the checkout's own code

    rows = []
    for clip in shared_clips(args.shared):
        t0 = time.perf_counter()
        try:
            _, frames = video.read_clip(clip, args.frames)
        except Exception as exc:  # noqa: BLE001 - a clip the limits refuse is recorded, not fatal
            rows.append({"clip": str(clip.relative_to(args.shared)), "error": str(exc)})
            continue
        t1 = time.perf_counter()
        found = faces.detect_boxes([f.image for f in frames])
        largest = [round(max((max(b.w, b.h) for b, _ in boxes), default=0.0), 1) for boxes in found]
        rows.append(
            {
                "clip": str(clip.relative_to(args.shared)),
                "source": source_of(args.shared, clip),
                "size": list(frames[0].image.shape[1::-1]),
                "frames": len(frames),
                "with_face": sum(1 for boxes in found if boxes),
                "largest_face_px": largest,
                "detect_s": round(time.perf_counter() - t1, 3),
                "decode_s": round(t1 - t0, 3),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr)
    args.out.write_text(json.dumps({"repo": str(args.repo), "rows": rows}, indent=1))
    return 0


def compare(args: argparse.Namespace) -> int:
    before = {r["clip"]: r for r in json.loads(args.before.read_text())["rows"] if "error" not in r}
    after = {r["clip"]: r for r in json.loads(args.after.read_text())["rows"] if "error" not in r}
    per_source: dict[str, list] = defaultdict(lambda: [0, 0, 0, 0, 0, 0.0, 0.0])
    losses = []
    for clip, b in before.items():
        a = after.get(clip)
        if a is None:
            continue
        row = per_source[b["source"]]
        lost = b["with_face"] - a["with_face"]
        row[0] += 1
        row[1] += b["frames"]
        row[2] += b["with_face"]
        row[3] += a["with_face"]
        row[4] = max(row[4], lost)
        row[5] += b["detect_s"]
        row[6] += a["detect_s"]
        if lost:
            losses.append((clip, b["with_face"], a["with_face"], b["frames"]))
    lines = [
        "| source | clips | frames | with a face before | after | most frames lost by one clip | MTCNN s before | after |",
        "|---|---|---|---|---|---|---|---|",
    ]
    totals = [0] * 7
    for source in sorted(per_source):
        r = per_source[source]
        lines.append(f"| {source} | {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | {r[5]:.1f} | {r[6]:.1f} |")
        totals = [t + v if i != 4 else max(t, v) for i, (t, v) in enumerate(zip(totals, r))]
    lines.append(
        f"| **all** | {totals[0]} | {totals[1]} | {totals[2]} | {totals[3]} | {totals[4]} | "
        f"{totals[5]:.1f} | {totals[6]:.1f} |"
    )
    if losses:
        lines += ["", "Clips whose frames with a face changed (before → after, of N):", ""]
        lines += [f"- {clip}: {b} → {a} of {n}" for clip, b, a, n in losses]
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    worst = max((b - a for _, b, a, _ in losses), default=0)
    return 1 if worst > args.max_loss else 0


def main() -> int:
    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(required=True)
    m = sub.add_parser("measure")
    m.add_argument("out", type=Path)
    m.add_argument("--repo", type=Path, default=root)
    m.add_argument("--shared", type=Path, default=root.parent / "shared" / "data")
    m.add_argument("--frames", type=int, default=32)
    m.set_defaults(run=measure)
    c = sub.add_parser("compare")
    c.add_argument("before", type=Path)
    c.add_argument("after", type=Path)
    c.add_argument("--markdown", type=Path)
    c.add_argument("--max-loss", type=int, default=1)
    c.set_defaults(run=compare)
    args = parser.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
