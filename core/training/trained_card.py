"""Publishing a finished run: its weight file and model card, where the registry finds them.

The weights go to ``spec.weights_dir`` (default: the user cache's ``weights/``, which the registry
searches) as ``<arch>.<tag>.weights.h5``, in float16 when the spec asks; the card goes to
``spec.cards_dir`` (default ``Settings.user_cards_dir``). The card's metrics are the *crop-level*
validation scores of the best epoch, and say so: video-level AUC on held-out clips, the number
the registry uses to choose defaults (``video_auc``), comes from ``python -m core evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.files import now_iso
from core.settings import Settings
from core.training.networks import TrainError, copy_weights
from core.training.run_folder import read_metrics
from core.training.runtime import RunFiles
from core.training.spec import TrainSpec
from models.architectures import FAMILY_OF, FAMILY_PREPROCESS


def _best_row(files: RunFiles) -> dict:
    rows = read_metrics(files.dir)
    best = [r for r in rows if r.get("best")]
    return best[-1] if best else rows[-1]


def _card_metrics(spec: TrainSpec, monitor: str, best: dict, train_rows: list, val_rows: list) -> dict:
    val_sources = sorted({r["source"] for r in val_rows})
    if val_rows:
        protocol = (
            f"crop-level scores on split '{spec.val_split}' of {Path(spec.data).name} "
            f"({len(val_rows)} crops from {len(val_sources)} held-out clips/images whose source "
            f"groups are not in training); best epoch by {monitor}. Not a video-level AUC: "
            "run `python -m core evaluate` on held-out clips for that."
        )
    else:
        protocol = (
            "no validation split: the epoch with the lowest training loss; these are training-set scores (optimistic)"
        )
    metrics = {
        "protocol": protocol,
        "best_epoch": best.get("epoch"),
        "train_crops": len(train_rows),
        "val_crops": len(val_rows),
    }
    for key in ("val_auc", "val_accuracy", "val_loss", "auc", "accuracy", "loss"):
        if best.get(key) is not None:
            name = key.replace("val_", "crop_val_") if key.startswith("val_") else f"crop_train_{key}"
            metrics[name] = round(float(best[key]), 4)
    return metrics


def publish(
    spec: TrainSpec,
    files: RunFiles,
    settings,
    monitor: str,
    train_rows: list,
    val_rows: list,
    init_note: str,
    hardware: str,
    probe: list[np.ndarray],
    expected: np.ndarray,
) -> tuple[Path, Path]:
    """Write the weight file and the card; check the registry loads them and scores like the run.

    Args:
        probe: a few uint8 RGB crops; expected: the trained model's p_fake on them.

    Returns:
        (card path, weights path).

    Raises:
        TrainError: the destination is shadowed, or the registry's scores differ from the run's.
    """
    import models
    from models.cards import ModelCard, WeightsSpec, write_card
    from models.weights import sha256_of

    card_id = f"{spec.arch}.{spec.tag}"
    weights_dir = Path(spec.weights_dir).expanduser() if spec.weights_dir else settings.cache_dir / "weights"
    cards_dir = Path(spec.cards_dir).expanduser() if spec.cards_dir else settings.user_cards_dir
    check_destination(card_id, weights_dir, settings)
    weights_path = weights_dir / f"{card_id}.weights.h5"
    copy_weights(files.best, weights_path, bool(spec.float16))

    arch = models.ARCHITECTURES[spec.arch]
    sources = {r["source"] for r in train_rows}
    extras = [f"pseudo-fakes {spec.pseudo_fakes}"] if spec.pseudo_fakes != "off" else []
    if spec.roundtrip:
        extras.append("every crop through a random resolution/JPEG/blur round trip")
    if spec.cache_trunk:
        extras.append(
            f"head for {spec.head_epochs} epochs, then the top {spec.trainable_blocks} "
            f"block(s) at lr {spec.finetune_lr:g} on cached features of the frozen trunk "
            f"({spec.cache_variants} random variants per crop)"
        )
    elif spec.arch == "xception" and spec.init != "random" and spec.head_epochs:
        extras.append(
            f"head for {spec.head_epochs} epochs, then the top {spec.trainable_blocks} "
            f"blocks at lr {spec.finetune_lr:g}"
        )
    extras.append(f"input {spec.input_size} px")
    card = ModelCard(
        id=card_id,
        family=arch.family,
        architecture=spec.arch,
        display_name=f"{arch.display_name} ({spec.tag})",
        input_size=spec.input_size,
        preprocess=FAMILY_PREPROCESS[arch.family],
        output="p_fake",
        weights=WeightsSpec(file=weights_path.name, sha256=sha256_of(weights_path), url=None, license=spec.license),
        threshold=float(spec.threshold),
        band=(float(spec.band[0]), float(spec.band[1])),
        trained_on=(
            f"{len(train_rows)} face crops from {len(sources)} clips/images of "
            f"{Path(spec.data).name} (splits: {', '.join(sorted({r['split'] for r in train_rows}))})"
        ),
        metrics=_card_metrics(spec, monitor, _best_row(files), train_rows, val_rows),
        created=now_iso(),
        description=(
            f"Trained by `python -m core train` (run {files.dir.name}): start from {init_note}; "
            f"{spec.epochs} epochs, batch {spec.batch}, lr {spec.lr:g}, loss {spec.loss}, "
            f"augment {'on' if spec.augment else 'off'}, balance {spec.balance}"
            + "".join(f", {e}" for e in extras)
            + f"; on {hardware}"
            + ("; weights stored as float16." if spec.float16 else ".")
        ),
    )
    card_path = write_card(card, cards_dir, FAMILY_OF)

    if cards_dir.resolve() in {settings.user_cards_dir.resolve(), models.SHIPPED_CARDS_DIR.resolve()}:
        detector = models.load_model(card_id, settings)
        got = np.asarray(detector.predict(probe), np.float64).ravel()  # the inference path
        worst = float(np.max(np.abs(got - expected))) if got.size else 0.0
        if worst > RELOAD_TOLERANCE:
            raise TrainError(f"the registry's {card_id} scores differ from the trained model's by {worst:.3f}")
    return card_path, weights_path


# The registry must reproduce the trained model's scores within this (float16 storage included).
RELOAD_TOLERANCE = 0.02


@dataclass(frozen=True)
class TrainResult:
    """How a run ended. ``card_id``/``card_path``/``weights_path`` are set when it succeeded."""

    state: str
    run_dir: Path
    card_id: str | None = None
    card_path: Path | None = None
    weights_path: Path | None = None
    best_epoch: int | None = None
    monitor: str | None = None
    best_value: float | None = None


def check_destination(card_id: str, weights_dir: Path, settings: Settings) -> None:
    """Refuse a run whose weight file would be shadowed by a same-named file searched earlier."""
    name = f"{card_id}.weights.h5"
    for folder in settings.weights_search_path():
        if folder.resolve() == weights_dir.resolve():
            return
        if (folder / name).exists():
            raise TrainError(
                f"{folder / name} already exists and the registry would load it instead "
                f"of this run's weights; choose another --tag"
            )
