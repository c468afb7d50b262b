"""Turn a trained run into one of the project's shipped models: card + weights under models/.

Used once per shipped model by the maintainers (not by the app):

    python scripts/publish_shipped.py --card RUN_CARD.json --weights RUN_WEIGHTS.h5 \
        --crossval CV_DIR/crossval.json --id meso4.dfi2 --display-name "Meso4 (project weights, v2)" \
        --note "..."

The card's metrics come from the cross-validation result (held-out clips only), never from the
run's own training scores; the weight file is copied as is, so its sha256 is the run's. From a
``--by-source`` result the card also takes its calibration and uncertain band (fitted on all the
out-of-source scores, by the rule the card states) and quotes the figures of that calibration and
band measured honestly (each source scored with both fitted on the other sources).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.weights import sha256_of  # noqa: E402  (after the path set-up above)


def card_metrics(crossval: dict) -> dict:
    """The card's metrics block from a ``dfi.crossval/1`` result."""
    video, frame = crossval["video"], crossval["frame"]
    interval = crossval.get("video_auc_ci95")
    return {
        "video_auc": round(video["auc"], 3),
        "video_auc_ci95": [round(v, 3) for v in interval] if interval else None,
        "accuracy": round(video["accuracy"], 3),
        "log_loss": round(video["log_loss"], 3),
        "eer": round(video["eer"], 3),
        "frame_auc": round(frame["auc"], 3),
        "n_real": video["n_real"],
        "n_fake": video["n_fake"],
        "protocol": crossval["protocol"],
    }


def by_source_metrics(crossval: dict) -> dict:
    """The metrics block from a ``--by-source`` cross-validation: out-of-source figures first."""
    pooled, fit, band = crossval["pooled"], crossval["calibrated_crossfit"], crossval["band"]
    per_source = {
        name: {
            "auc": m["auc"] and round(m["auc"], 3),
            "auc_ci95": m["auc_ci95"],
            "n_real": m["n_real"],
            "n_fake": m["n_fake"],
        }
        for name, m in crossval["per_source"].items()
    }
    return {
        "video_auc": round(pooled["auc"], 3),
        "video_auc_ci95": pooled["auc_ci95"],
        "accuracy": round(pooled["accuracy"], 3),
        "log_loss": round(pooled["log_loss"], 3),
        "eer": round(pooled["eer"], 3),
        "frame_auc": round(crossval["frame"]["auc"], 3),
        "ece": fit.get("ece"),
        "uncertain_share": fit.get("uncertain_share"),
        "verdict_accuracy": fit.get("verdict_accuracy"),
        "calibrated_log_loss": fit.get("log_loss"),
        "n_real": pooled["n_real"],
        "n_fake": pooled["n_fake"],
        "per_source": per_source,
        "out_of_source": True,  # every clip scored by a model that never saw its source
        "protocol": (
            crossval["protocol"] + "; AUC, accuracy and log loss are of the raw scores; "
            "ECE, share uncertain and verdict accuracy are of calibrated scores with the "
            "calibration and band fitted on the other sources only (never on the clips "
            f"they are measured on); band rule: {band['rule']}"
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--card", type=Path, required=True, help="the run's card JSON")
    parser.add_argument("--weights", type=Path, required=True, help="the run's weight file")
    parser.add_argument("--crossval", type=Path, required=True, help="crossval.json of the recipe")
    parser.add_argument("--id", required=True, help="shipped card id, <arch>.<tag>")
    parser.add_argument("--display-name", required=True)
    parser.add_argument("--trained-on", required=True, help="plain words: which clips, how many")
    parser.add_argument("--note", default="", help="appended to the description")
    parser.add_argument("--protocol-note", default="", help="appended to the metrics protocol")
    args = parser.parse_args()

    card = json.loads(args.card.read_text(encoding="utf-8"))
    crossval = json.loads(args.crossval.read_text(encoding="utf-8"))
    weights_name = f"{args.id}.weights.h5"
    target = ROOT / "models" / "weights" / weights_name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.weights, target)
    by_source = crossval.get("by_source", False)
    metrics = by_source_metrics(crossval) if by_source else card_metrics(crossval)
    if by_source:
        calibration = crossval["calibration"]
        if calibration:
            card["calibration"] = {
                **calibration,
                "fitted_on": "out-of-source crop scores of the recipe's "
                f"leave-one-source-out cross-validation ({calibration['n']} crops)",
            }
        card["band"] = crossval["band"]["band"]
    if args.protocol_note:
        metrics["protocol"] += "; " + args.protocol_note
    card.update(
        id=args.id,
        display_name=args.display_name,
        trained_on=args.trained_on,
        metrics=metrics,
        weights={
            "file": weights_name,
            "sha256": sha256_of(target),
            "url": None,
            "license": "the project's own weights; its training clips are for non-commercial "
            "research (FaceForensics++, DFDC terms), so use these for research only",
        },
        description=card["description"] + (" " + args.note if args.note else ""),
    )
    card.pop("source", None)
    out = ROOT / "models" / "cards" / f"{args.id}.json"
    out.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"{out.relative_to(ROOT)}  {target.relative_to(ROOT)} ({target.stat().st_size / 2**20:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
