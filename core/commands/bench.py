"""``python -m core bench [CLIP] [--frames N] [--repeat K] [--models ID,ID] [--random-weights] [--explain] [--no-fresh] [--json]``.

Loads the models once, analyses the clip once cold and K times warm, and reports the median warm run
per stage (decode, detect, crop, classify per model), frames/s and peak memory. Decoding runs in a
thread beside detection, so the stages overlap: ``overlap`` is the sum of the stage times over the
wall time of the same run (median of the warm runs; 1.0 = nothing overlapped). ``first_verdict_s``
is the wall time of ``python -m core analyze CLIP`` in a fresh process (imports, model loading and
one cold analysis: what a first clip costs), unless ``--no-fresh``. ``--random-weights``
gives models without weights random ones so their speed can be timed; such scores mean nothing, so
this exists only here, never in ``analyze``. ``--explain`` also makes every run's heatmaps (after
the analysis, on its crops, as the page and ``analyze --explain`` do) and adds ``explain_s`` (median
warm seconds per card id, not part of ``total_s``) and ``explain_ratio`` (explain_s / classify_s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from core.commands import UsageError, add_frames_option, add_models_option, load_settings, positive_int
from core.settings import SAMPLES_DIR, VIDEO_EXTENSIONS


def register(subparsers) -> None:
    """Add the ``bench`` sub-command."""
    settings = load_settings()
    p = subparsers.add_parser("bench", help="time each stage of an analysis", description=__doc__.split("\n\n")[1])
    p.add_argument(
        "clip", nargs="?", type=Path, metavar="CLIP", help="video file (default: the first clip in samples/)"
    )
    add_frames_option(p, settings)
    p.add_argument("--repeat", type=positive_int(50), default=3, help="warm runs; the median is reported (default 3)")
    add_models_option(p)
    p.add_argument(
        "--random-weights",
        action="store_true",
        help="TIMING ONLY: give models without weights random ones (their scores mean nothing)",
    )
    p.add_argument(
        "--explain",
        action="store_true",
        help="also time the heatmaps of where each detector looked (Grad-CAM) on each run's crops",
    )
    p.add_argument(
        "--no-fresh",
        action="store_true",
        help="skip timing a first verdict in a fresh process (first_verdict_s is then null)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Time the pipeline on one clip; returns 0."""
    settings = load_settings()
    clip = args.clip or default_clip()
    started = time.perf_counter()
    import models
    from core.engine import analysis, faces, video  # the imports are part of the cold start being measured

    import_s = time.perf_counter() - started
    model_ids = args.models if args.models is not None else models.default_model_ids(settings)
    for model_id in model_ids:
        models.get_card(model_id, settings)  # an unknown id fails before anything loads
    video.probe(clip, settings)  # so does a bad clip

    t0 = time.perf_counter()
    with contextlib.redirect_stdout(sys.stderr):
        loaded = _load(model_ids, settings, args.random_weights)
        faces.get_face_finder()
    load_s = time.perf_counter() - t0

    runs, explained = [], []
    with contextlib.redirect_stdout(sys.stderr):
        for _ in range(args.repeat + 1):  # the first run is the cold one (graph tracing, allocation)
            report = analysis.analyze_loaded(clip, loaded, args.frames, settings)
            runs.append(report.timings)
            if args.explain:
                explained.append(_explain_seconds(report, loaded))
    cold, warm = runs[0], runs[1:]
    result = summarise(clip, args.frames, len(report.sampling.frame_indices), import_s, load_s, cold, warm)
    if args.explain:
        result.update(summarise_explain(result, explained, len(report.crops)))
    result["first_verdict_s"] = None if args.no_fresh else first_verdict_seconds(clip, args.frames, model_ids)
    result["random_weights"] = [item.card.id for item in loaded if item.random_weights]
    unavailable = [f"{item.card.id}: {item.error}" for item in loaded if item.detector is None]
    result["unavailable"] = unavailable
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False))
    else:
        print(format_table(result))
    return 0


def first_verdict_seconds(clip: Path, frames: int, model_ids) -> float:
    """Wall seconds of one ``analyze`` in a fresh Python process: imports, loading, a cold run.

    Measured from before the process is started to its exit, so interpreter start-up counts too,
    as it does for a server's first visitor. Random weights (``--random-weights``) do not reach
    that process: such models are unavailable there and cost nothing.
    """
    command = [sys.executable, "-m", "core", "analyze", str(clip), "--frames", str(frames), "--json", "-"]
    if model_ids:
        command += ["--models", ",".join(model_ids)]
    started = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise UsageError(f"the fresh-process analysis failed: {done.stderr.strip().splitlines()[-1:]}")
    return round(seconds, 4)


def default_clip() -> Path:
    """The first video in samples/, or a UsageError saying what to pass."""
    clips = (
        sorted(p for p in SAMPLES_DIR.glob("*") if p.suffix.lower() in VIDEO_EXTENSIONS) if SAMPLES_DIR.is_dir() else []
    )
    if not clips:
        raise UsageError(f"no clip given and no sample clip in {SAMPLES_DIR}: pass a clip, e.g. bench my_clip.mp4")
    return clips[0]


def _load(model_ids, settings, random_weights: bool) -> list:
    """Load each model once; with ``random_weights``, build the missing ones with random weights."""
    import models
    from core.engine.analysis import LoadedModel, load_models

    loaded = load_models(model_ids, settings)
    if not random_weights:
        return loaded
    return [
        LoadedModel(item.card, models.build_detector(item.card, weights=False), random_weights=True)
        if item.detector is None
        else item
        for item in loaded
    ]


def _explain_seconds(report, loaded) -> dict[str, float]:
    """Seconds to explain the report's crops, per card id (one batched pass per detector)."""
    from core.engine.explain_export import explain_report

    detectors = {item.card.id: item.detector for item in loaded if item.detector is not None}
    return {e.id: e.seconds for e in explain_report(report, detectors)}


def summarise_explain(result: dict, explained: list[dict[str, float]], crops: int) -> dict:
    """``explain_s`` (median warm per card id), its first (cold) run, and the ratio to classify_s."""
    warm = explained[1:]
    ids = list(warm[0]) if warm else []
    explain_s = {i: round(statistics.median(run[i] for run in warm), 4) for i in ids}
    classify = result["stages"]["classify_s"]
    return {
        "explain_crops": crops,
        "explain_s": explain_s,
        "explain_first_s": {i: round(explained[0].get(i, 0.0), 4) for i in ids},
        "explain_ratio": {i: round(explain_s[i] / classify[i], 3) if classify.get(i) else None for i in ids},
        "explain_ratio_all": round(sum(explain_s.values()) / sum(classify[i] for i in ids), 3)
        if ids and sum(classify[i] for i in ids) > 0
        else None,
    }


def summarise(clip: Path, requested: int, sampled: int, import_s: float, load_s: float, cold, warm) -> dict:
    """The bench JSON: median warm stages, the cold start, frames/s and peak memory."""

    def med(values):
        return round(statistics.median(values), 4)

    ids = list(warm[0].classify_s)
    total = med([t.total_s for t in warm])
    stages = {
        "decode_s": med([t.decode_s for t in warm]),
        "detect_s": med([t.detect_s for t in warm]),
        "crop_s": med([t.crop_s for t in warm]),
        "classify_s": {i: med([t.classify_s[i] for t in warm]) for i in ids},
    }
    flat = {k: v for k, v in stages.items() if k != "classify_s"} | {
        f"classify_s[{i}]": v for i, v in stages["classify_s"].items()
    }
    dominant = max(flat, key=flat.get)
    return {
        "clip": str(clip),
        "frames": sampled,
        "frames_requested": requested,
        "load_s": round(load_s, 4),
        "total_s": total,
        "stages": stages,
        # ru_maxrss is in KiB on Linux.
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "frames_per_s": round(sampled / total, 2) if total > 0 else None,
        "repeat": len(warm),
        "warm_runs_s": [round(t.total_s, 4) for t in warm],
        "import_s": round(import_s, 4),
        "first_run_s": round(cold.total_s, 4),
        "cold_start_s": round(import_s + load_s + cold.total_s - total, 4),
        "overlap": med([_overlap(t) for t in warm]),
        "dominant_stage": dominant,
        "dominant_share": round(flat[dominant] / total, 3) if total > 0 else None,
    }


def _overlap(timings) -> float:
    """Sum of one run's stage times over its wall time: above 1 when stages ran side by side."""
    busy = timings.decode_s + timings.detect_s + timings.crop_s + sum(timings.classify_s.values())
    return busy / timings.total_s if timings.total_s > 0 else 0.0


def format_table(r: dict) -> str:
    """The bench result as a few aligned lines a person can read."""
    lines = [f"bench: {r['clip']}  ({r['frames']} frames, median of {r['repeat']} warm runs)"]
    if r["random_weights"]:
        lines.append(f"  NOTE: RANDOM WEIGHTS for {', '.join(r['random_weights'])}: timing only, scores meaningless")
    for u in r["unavailable"]:
        lines.append(f"  not timed (unavailable): {u}")
    rows = [
        ("decode", r["stages"]["decode_s"]),
        ("detect (MTCNN)", r["stages"]["detect_s"]),
        ("crop", r["stages"]["crop_s"]),
    ]
    rows += [(f"classify {i}", s) for i, s in r["stages"]["classify_s"].items()]
    rows += [("total (warm)", r["total_s"])]
    rows += [(f"heatmaps {i}", s) for i, s in r.get("explain_s", {}).items()]
    for name, s in rows:
        lines.append(f"  {name:<28} {s:8.3f} s")
    if r.get("explain_ratio_all") is not None:
        lines.append(
            f"  heatmaps of {r['explain_crops']} crops cost {r['explain_ratio_all']:.2f}x scoring them "
            "(not part of the total)"
        )
    lines += [
        f"  {'frames/s':<28} {r['frames_per_s']:8.1f}",
        f"  cold start: imports {r['import_s']:.2f} s + load {r['load_s']:.2f} s + first run "
        f"{r['first_run_s']:.2f} s = {r['cold_start_s']:.2f} s more than a warm run",
        f"  stages overlap {r['overlap']:.2f}x (sum of stage times / wall time)",
    ]
    if r.get("first_verdict_s") is not None:
        lines.append(f"  first verdict in a fresh process: {r['first_verdict_s']:.2f} s (imports, load, cold run)")
    lines += [
        f"  peak memory {r['peak_rss_mb']:.0f} MB; slowest stage: {r['dominant_stage']} "
        f"({100 * r['dominant_share']:.0f} % of the warm total)",
    ]
    return "\n".join(lines)
