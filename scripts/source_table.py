"""One table, the same clips for every row: registered detectors and cross-validated recipes, per source.

    python scripts/source_table.py DATASET --models meso4.df,xception.dfi2 \
        [--crossval NAME=cv_dir/crossval.json …] --out table.json [--markdown table.md]

DATASET is a face-crop dataset whose clips sit in source folders (``scripts/link_shared_sources.py``
then ``python -m core extract-faces``). A registered detector scores every crop through the
registry (``Detector.predict``, its card's calibration included) and is judged with its card's
own band; a cross-validated recipe brings its out-of-source scores (each clip scored by a model
that never saw its source) and is judged with the calibration and band fitted on the *other*
sources (``calibrated_crossfit``). Both get the per-source and pooled figures of
:func:`core.evaluation.crossval_report.source_report`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))


def score_registered(card_id: str, rows: list[dict], settings) -> list[dict]:
    """Clips (with crop scores) of ``rows`` scored by a registered detector."""
    import models
    from core.evaluation.crossval import clip_scores
    from core.training.crops import load_rgb

    detector = models.load_model(card_id, settings)
    crop_p = []
    for start in range(0, len(rows), 64):
        crop_p.append(detector.predict([load_rgb(r["file"]) for r in rows[start : start + 64]]))
    return clip_scores(rows, np.concatenate(crop_p), "all", keep_crops=True)


def band_stats(clips: list[dict], band: tuple[float, float]) -> dict:
    from core.evaluation.calibration import expected_calibration_error, verdict_stats

    y = np.array([c["label"] for c in clips])
    p = np.array([c["p_fake"] for c in clips])
    stats = verdict_stats(y, p, band)
    return {
        "band": list(band),
        "ece": round(expected_calibration_error(y, p), 4),
        "uncertain_share": stats["uncertain_share"],
        "verdict_accuracy": stats["verdict_accuracy"],
    }


def row_for(name: str, clips: list[dict], band: tuple[float, float] | None, crossval: dict | None) -> dict:
    from core.evaluation.crossval_report import source_report

    report = source_report(clips)
    judged = crossval["calibrated_crossfit"] if crossval else band_stats(clips, band)
    return {
        "name": name,
        "pooled": report["pooled"],
        "per_source": report["per_source"],
        "clips": clips,
        "judged": judged,
        "how": "calibration and band fitted on the other sources"
        if crossval
        else "the card's own calibration and band",
    }


def _subset_crossfit(clips: list[dict], only: set[str]) -> dict:
    """Crossfit figures over the clips of ``only``: each source calibrated on all the others."""
    from core.evaluation.calibration import expected_calibration_error, verdict_stats
    from core.evaluation.crossval_report import _clip_means, fit_calibration_and_band

    labels, probs, decided, right = [], [], 0, 0
    for source in sorted(only):
        held = [c for c in clips if c["collection"] == source]
        calibration, band = fit_calibration_and_band([c for c in clips if c["collection"] != source])
        p = _clip_means(held, calibration)
        y = np.array([c["label"] for c in held])
        stats = verdict_stats(y, p, band["band"])
        n_verdicts = stats["n_fake_verdicts"] + stats["n_real_verdicts"]
        decided += n_verdicts
        right += round((stats["verdict_accuracy"] or 0) * n_verdicts)
        labels += y.tolist()
        probs += p.tolist()
    return {
        "ece": round(expected_calibration_error(np.array(labels), np.array(probs)), 4),
        "uncertain_share": round(1 - decided / len(labels), 4),
        "verdict_accuracy": round(right / decided, 4) if decided else None,
    }


def markdown(rows: list[dict]) -> str:
    sources = sorted({s for r in rows for s in r["per_source"]})
    head = ["detector", "pooled AUC (95% CI)", "acc@0.5", "log loss", "ECE", "uncertain", "verdicts right"]
    lines = ["| " + " | ".join(head + sources) + " |", "|" + "---|" * (len(head) + len(sources))]
    for r in rows:
        p, j = r["pooled"], r["judged"]
        ci = p["auc_ci95"]
        cells = [
            r["name"],
            f"{p['auc']:.3f} ({ci[0]:.2f}-{ci[1]:.2f})" if ci else f"{p['auc']}",
            f"{p['accuracy']:.3f}",
            f"{p['log_loss']:.3f}",
            _f(j.get("ece")),
            _f(j.get("uncertain_share")),
            _f(j.get("verdict_accuracy")),
        ]
        cells += [_f(r["per_source"].get(s, {}).get("auc")) for s in sources]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _f(v) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--models", default="", help="registered card ids, comma-separated")
    parser.add_argument("--crossval", action="append", default=[], metavar="NAME=crossval.json")
    parser.add_argument("--sources", default="", help="only these collections (comma-separated)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)

    import models
    from core.data.datasets import read_manifest
    from core.settings import get_settings

    settings = get_settings()
    only = {s for s in args.sources.split(",") if s}
    rows = [r for r in read_manifest(args.data) if not only or r["collection"] in only]
    table = []
    for entry in args.crossval:
        name, path = entry.split("=", 1)
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        clips = [c for c in result["clips"] if not only or c["collection"] in only]
        if only:  # the calibration and band judged on these sources alone, fitted on the others
            result = {**result, "calibrated_crossfit": _subset_crossfit(result["clips"], only)}
        table.append(row_for(name, clips, None, result))
    for card_id in [m for m in args.models.split(",") if m]:
        card = models.get_card(card_id, settings)
        table.append(row_for(card_id, score_registered(card_id, rows, settings), card.band, None))
        print(f"scored {card_id}", file=sys.stderr, flush=True)
    args.out.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(markdown(table), encoding="utf-8")
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
