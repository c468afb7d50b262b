"""Scan throughput on a folder of clips: a plain analyze loop against the scan engine's backends.

    python scripts/scan_throughput.py ../shared/data/clips --out /work/exp/throughput [--frames 32]
        [--configs loop,local1,local2,ray2]

``loop`` is the baseline: the detectors loaded once, then ``analyze_loaded`` clip after clip in
this process. ``local1`` / ``local2`` are ``run_scan`` with 1 and 2 local workers; ``ray2`` starts a
local Ray cluster (``ray start --head`` on 127.0.0.1 with 2 CPUs, tests/ray_cluster.py) and scans
on it with 2 actors. Each scan writes into a fresh RESULTS folder. For every setting: wall seconds
from start to the last clip (startup included: processes, TensorFlow, detectors, a Ray job),
clips/min over that wall time, and the steady rate between the first and the last clip finished
(startup excluded). Per clip, from the loop's reports: decode, face detection (MTCNN and crops) and
classification seconds, and the clip's bytes (what moving it to a worker costs). The computer's
load average is recorded before and after each setting, since a shared computer skews the figures.
Writes throughput.json and throughput.md into ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.scan.engine import ScanRequest, run_scan  # noqa: E402
from core.scan.sources import expand  # noqa: E402
from core.settings import get_settings  # noqa: E402


def _loop(clips, frames: int) -> dict:
    from core.engine import analysis

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        loaded = analysis.load_models(None)
    load_s = time.perf_counter() - t0
    per_clip, finished = [], []
    start = time.perf_counter()
    for item in clips:
        try:
            report = analysis.analyze_loaded(item.path, loaded, frames)
        except Exception as exc:  # noqa: BLE001 — a bad clip is counted, as in a scan
            per_clip.append({"clip": item.name, "error": str(exc)})
        else:
            t = report.timings
            per_clip.append(
                {
                    "clip": item.name,
                    "bytes": item.path.stat().st_size,
                    "decode_s": t.decode_s,
                    "detect_s": t.detect_s + t.crop_s,
                    "classify_s": sum(t.classify_s.values()),
                    "classify_by_model_s": dict(t.classify_s),
                    "total_s": t.total_s,
                    "faces": len(report.faces),
                }
            )
        finished.append(time.perf_counter() - start)
    wall = time.perf_counter() - start
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return {"load_s": load_s, "wall_s": wall, "finished_s": finished, "per_clip": per_clip, "peak_rss_gb": rss_gb}


def _scan(src: Path, frames: int, workers: int, ray_address: str | None = None) -> dict:
    out = Path(tempfile.mkdtemp(prefix="dfi-throughput-"))
    finished: list[float] = []
    start = time.perf_counter()

    def progress(p) -> None:
        finished.extend([time.perf_counter() - start] * len(p.new_rows))

    try:
        summary = run_scan(
            ScanRequest(out=out, src=src, frames=frames, workers=workers, ray_address=ray_address),
            progress=progress,
        )
    finally:
        shutil.rmtree(out, ignore_errors=True)
    wall = time.perf_counter() - start
    children_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    return {"wall_s": wall, "finished_s": finished, "summary": summary.to_dict(), "children_peak_rss_gb": children_rss}


def _rates(result: dict, n: int) -> dict:
    done = sorted(result["finished_s"])
    steady = None
    if len(done) >= 3 and done[-1] > done[0]:
        steady = 60.0 * (len(done) - 1) / (done[-1] - done[0])
    return {"clips_per_min": 60.0 * n / result["wall_s"], "steady_clips_per_min": steady}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("src", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--frames", type=int, default=get_settings().default_frames)
    parser.add_argument("--configs", default="loop,local1,local2,ray2")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as unpack:
        clips = expand(args.src, Path(unpack), get_settings())
    n = len(clips)
    results: dict = {"clips": n, "frames": args.frames, "cores": os.cpu_count(), "settings": {}}
    for config in args.configs.split(","):
        load_before = os.getloadavg()
        print(f"{config}: {n} clips…", file=sys.stderr, flush=True)
        if config == "loop":
            result = _loop(clips, args.frames)
        elif config.startswith("local"):
            result = _scan(args.src, args.frames, int(config[len("local") :]))
        elif config.startswith("ray"):
            from tests.ray_cluster import local_ray_cluster

            workers = int(config[len("ray") :])
            with local_ray_cluster(num_cpus=workers) as address:
                result = _scan(args.src, args.frames, workers, address)
        else:
            parser.error(f"unknown setting {config}")
        result.update(_rates(result, n), load_before=load_before, load_after=os.getloadavg())
        results["settings"][config] = result
        print(
            f"{config}: {result['wall_s']:.0f} s, {result['clips_per_min']:.1f} clips/min "
            f"(steady {result['steady_clips_per_min'] or 0:.1f}); load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}",
            file=sys.stderr,
            flush=True,
        )
        (args.out / "throughput.json").write_text(json.dumps(results, indent=2))
    (args.out / "throughput.md").write_text(_markdown(results))
    print(_markdown(results))
    return 0


def _markdown(results: dict) -> str:
    lines = [
        f"{results['clips']} clips, {results['frames']} frames each, {results['cores']} cores",
        "",
        "| setting | wall s | clips/min | steady clips/min | load avg before → after |",
        "|---|---|---|---|---|",
    ]
    for name, r in results["settings"].items():
        steady = f"{r['steady_clips_per_min']:.1f}" if r["steady_clips_per_min"] else "-"
        lines.append(
            f"| {name} | {r['wall_s']:.0f} | {r['clips_per_min']:.1f} | {steady} | "
            f"{r['load_before'][0]:.1f} → {r['load_after'][0]:.1f} |"
        )
    loop = results["settings"].get("loop")
    if loop:
        ok = [c for c in loop["per_clip"] if "error" not in c]
        med = {k: statistics.median(c[k] for c in ok) for k in ("decode_s", "detect_s", "classify_s", "total_s")}
        mean = {k: statistics.fmean(c[k] for c in ok) for k in ("decode_s", "detect_s", "classify_s", "total_s")}
        mb = statistics.fmean(c["bytes"] for c in ok) / 1e6
        lines += [
            "",
            f"Per clip (the loop's reports, {len(ok)} clips; detectors loaded once in {loop['load_s']:.1f} s, "
            f"peak RSS {loop['peak_rss_gb']:.2f} GB):",
            "",
            "| stage | median s | mean s |",
            "|---|---|---|",
            *(
                f"| {k[:-2]} | {med[k]:.2f} | {mean[k]:.2f} |"
                for k in ("decode_s", "detect_s", "classify_s", "total_s")
            ),
            "",
            f"Mean clip size {mb:.1f} MB.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
