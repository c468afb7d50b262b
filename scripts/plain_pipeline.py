"""The plain fast pipeline issue 14 measures the project against, and the ratio, in one process.

    python scripts/plain_pipeline.py CLIP [--frames 32] [--repeat 3] [--json OUT] [--repo CHECKOUT]

The simplest fast pipeline built from the same libraries doing the same work: decode the same
evenly spaced frames with a sequential cv2 grab()/retrieve() loop, run the ``mtcnn`` package's
MTCNN (its defaults) on each frame downscaled to 640 px on its long side, in batches of 8, cut a
square crop (1.3x the box) of every face above 0.9 confidence, resize it to each card's input size
and score all crops with one batched call per model (the project's own loaded detectors, so the
networks and input sizes are the same). No padding, no retries, no tracking, no report.

Both pipelines share one set of loaded models; after one cold run of each, the warm runs
alternate (plain, project, plain, project, ...) so that both see the same machine load. Prints the
median warm seconds of each and the ratio project / plain.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BATCH = 8
DETECT_SIDE = 640
MARGIN = 1.3
CONFIDENCE = 0.9


def plain(clip: Path, frames: int, loaded, mtcnn) -> dict:
    """One run of the plain pipeline; seconds per stage and the number of faces scored."""
    import cv2
    import numpy as np

    from models.detector import resize_crop

    t0 = time.perf_counter()
    cap = cv2.VideoCapture(str(clip), cv2.CAP_FFMPEG)
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = sorted({int(i) for i in np.linspace(0, count - 1, frames).round()})
    images, position = [], 0
    for target in wanted:
        while position < target and cap.grab():
            position += 1
        if not cap.grab():
            break
        position += 1
        ok, bgr = cap.retrieve()
        if not ok:
            break
        images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    cap.release()
    t1 = time.perf_counter()

    crops = []
    for start in range(0, len(images), BATCH):
        chunk = images[start : start + BATCH]
        h, w = chunk[0].shape[:2]
        scale = DETECT_SIDE / max(h, w)
        small = [cv2.resize(im, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) for im in chunk]
        rows = mtcnn.detect_faces(small, output_type="numpy", box_format="xywh")
        for row in np.asarray(rows).reshape(-1, 16):
            if row[5] < CONFIDENCE:
                continue
            image = chunk[int(row[0])]
            cx, cy = (row[1] + row[3] / 2) / scale, (row[2] + row[4] / 2) / scale
            side = int(min(max(row[3], row[4]) / scale * MARGIN, h, w))
            x0 = int(min(max(0, cx - side / 2), w - side))
            y0 = int(min(max(0, cy - side / 2), h - side))
            crops.append(image[y0 : y0 + side, x0 : x0 + side])
    t2 = time.perf_counter()

    classify = {}
    for item in loaded:
        started = time.perf_counter()
        if crops:
            item.detector.predict([resize_crop(c, item.card.input_size) for c in crops])
        classify[item.card.id] = time.perf_counter() - started
    return {
        "decode_s": t1 - t0,
        "detect_s": t2 - t1,
        "classify_s": classify,
        "total_s": time.perf_counter() - t0,
        "faces": len(crops),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--repo", type=Path, default=ROOT, help="the checkout whose pipeline is measured")
    args = parser.parse_args()
    sys.path.insert(0, str(args.repo.resolve()))

    from core.engine import analysis, faces
    from core.settings import get_settings

    settings = get_settings()
    loaded = analysis.load_models(None, settings)
    # the same mtcnn package, with its default settings (get_detector before it was renamed)
    mtcnn = (getattr(faces, "get_face_finder", None) or faces.get_detector)()
    plain(args.clip, args.frames, loaded, mtcnn)  # cold runs: graph tracing, allocation
    analysis.analyze_loaded(args.clip, loaded, args.frames, settings)
    plains, projects = [], []
    for _ in range(args.repeat):
        plains.append(plain(args.clip, args.frames, loaded, mtcnn))
        projects.append(analysis.analyze_loaded(args.clip, loaded, args.frames, settings).timings)
    plain_s = statistics.median(r["total_s"] for r in plains)
    project_s = statistics.median(t.total_s for t in projects)
    result = {
        "clip": str(args.clip),
        "frames": args.frames,
        "models": [item.card.id for item in loaded],
        "plain_total_s": round(plain_s, 4),
        "plain_runs_s": [round(r["total_s"], 4) for r in plains],
        "plain_stages": {
            "decode_s": round(statistics.median(r["decode_s"] for r in plains), 4),
            "detect_s": round(statistics.median(r["detect_s"] for r in plains), 4),
            "classify_s": {
                i: round(statistics.median(r["classify_s"][i] for r in plains), 4) for i in plains[0]["classify_s"]
            },
        },
        "plain_faces": plains[-1]["faces"],
        "project_total_s": round(project_s, 4),
        "project_runs_s": [round(t.total_s, 4) for t in projects],
        "ratio": round(project_s / plain_s, 3),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
