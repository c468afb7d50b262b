"""The training spec: every choice of a run, validated, with per-family defaults.

A spec is plain JSON (``spec.json`` in the run folder, or ``python -m core train --spec FILE``);
fields left out (or None) take the defaults of :func:`resolve`, which follow how each family is
usually trained: MesoNet as its authors did (Adam, lr 1e-3 divided by 10 every 1000 steps down
to 1e-6, batch 75, mean squared error on the sigmoid, as in their ``classifiers.py``); Xception as
in FaceForensics++ (ImageNet init, head first, then fine-tuning at a lower rate).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import DFIError
from core.schema_check import first_problem
from core.training.networks import TrainError

LOSSES = ("bce", "mse")

FAMILY_DEFAULTS = {
    "mesonet": {"batch": 75, "lr": 1e-3, "loss": "mse", "init": "random", "float16": False},
    "xception": {"batch": 32, "lr": 1e-3, "loss": "bce", "init": "imagenet", "float16": True},
}
# Epochs the Train page suggests per family (the command line's default stays the spec's).
SUGGESTED_EPOCHS = {"mesonet": 10, "xception": 6}


@dataclass(frozen=True)
class TrainSpec:
    """One training run. ``None`` means "the family default" until :func:`resolve` fills it in.

    Attributes:
        arch: registry architecture (``meso4``, ``mesoinception4``, ``xception``).
        data: face-crop dataset folder (``python -m core extract-faces`` output).
        tag: the card id becomes ``<arch>.<tag>``.
        init: "random", "imagenet" (Xception; from the Keras cache only) or a card id.
        epochs: total epochs (Xception: head phase included).
        head_epochs: Xception phase 1 (frozen backbone) epochs; default a quarter of ``epochs``.
        trainable_blocks: Xception phase 2 unfreezes this many top blocks (of 14), BN kept frozen.
        input_size: input side in pixels; default the architecture's native side (Xception also
            takes any side from 71, which is much faster to train on a CPU).
        batch, lr, loss: batch size (global, over all GPUs), learning rate, "bce" or "mse".
        finetune_lr: Xception phase 2 learning rate (default lr / 10).
        augment: flip, JPEG, brightness/contrast, blur on training crops.
        roundtrip: also pass every training crop, real or fake alike, through a random
            resolution and re-compression round trip (down- and up-scaling, JPEG, blur), so that
            neither label owns a format (see :func:`core.training.augment.format_roundtrip`).
        balance: "weights" (by class), "sources" (by class within each collection, so that a
            collection holding mostly one label cannot teach "this source means fake"),
            "sampling" or "none".
        pseudo_fakes: "off", "add" (SBI fakes from real crops added) or "only" (real crops + SBI).
        train_splits: dataset splits to train on (default: all except ``val_split`` and test).
        exclude_collections: collections (sub-folders of real/ and fake/, see
            :func:`core.data.datasets.collection_of`) left out of training and validation entirely:
            ``cross-validate --by-source`` holds a whole source out this way.
        val_split: split used for validation and the best checkpoint ("" for none).
        steps_per_epoch: cap (or repeat) batches per epoch; default one pass.
        cache_trunk: Xception only: compute the frozen trunk's features once and train only the
            top ``trainable_blocks`` (1 or 2) and the head on them (see :mod:`core.training.trunk_cache`).
        cache_variants: random variants of each crop in that cache (epochs cycle through them).
        seed, workers: random seed; PyDataset worker threads.
        float16: store the card's weight file in float16 (loads into float32).
        threshold, band: the card's decision threshold and uncertain band.
        out: run folder (default ``<runs_root>/<arch>.<tag>-<time>``).
        cards_dir, weights_dir: where the card and its weights go (default: the user's folders).
        license: licence line written in the card.
    """

    arch: str
    data: str
    tag: str
    init: str | None = None
    epochs: int = 10
    head_epochs: int | None = None
    trainable_blocks: int = 4
    input_size: int | None = None
    batch: int | None = None
    lr: float | None = None
    finetune_lr: float | None = None
    loss: str | None = None
    augment: bool = True
    roundtrip: bool = False
    balance: str = "weights"
    pseudo_fakes: str = "off"
    train_splits: list[str] | None = None
    exclude_collections: list[str] | None = None
    val_split: str = "val"
    steps_per_epoch: int | None = None
    cache_trunk: bool = False
    cache_variants: int = 2
    seed: int = 0
    workers: int = 2
    float16: bool | None = None
    threshold: float = 0.5
    band: list[float] = field(default_factory=lambda: [0.35, 0.65])  # as the shipped cards
    out: str | None = None
    cards_dir: str | None = None
    weights_dir: str | None = None
    license: str = "user-trained; the terms of its training data apply"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def spec_from_dict(data: dict) -> TrainSpec:
    """A TrainSpec from parsed JSON; unknown keys are an error (a typo must not be ignored).

    Raises:
        TrainError: not an object, unknown or missing fields.
    """
    problem = first_problem("train_spec", data)
    if problem:
        raise TrainError(f"training spec: {problem}" if not problem.startswith("a training spec") else problem)
    return TrainSpec(**data)


def read_spec(path: Path) -> TrainSpec:
    """Read a spec file. Raises TrainError when it is missing or not valid JSON."""
    try:
        return spec_from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError) as exc:
        raise TrainError(f"cannot read training spec {path}: {exc}") from None


def _init_card_size(spec: TrainSpec) -> int | None:
    """The input side of the card a run starts from (fine-tuning keeps it), if init is a card."""
    if spec.init in (None, "random", "imagenet"):
        return None
    from models import get_card

    try:
        card = get_card(spec.init)
    except DFIError:
        return None  # initialise() reports an unknown or unusable card with its own message
    return card.input_size if card.architecture == spec.arch else None


def resolve(spec: TrainSpec) -> TrainSpec:
    """Fill family defaults and check every value; returns the spec the run will use.

    Raises:
        TrainError: a value out of range or not one of the allowed choices.
    """
    from models import ARCHITECTURES

    if spec.arch not in ARCHITECTURES:
        raise TrainError(f"unknown architecture {spec.arch!r}: must be one of {', '.join(ARCHITECTURES)}")
    family = ARCHITECTURES[spec.arch].family
    defaults = FAMILY_DEFAULTS[family]
    filled = {k: (defaults[k] if getattr(spec, k) is None else getattr(spec, k)) for k in defaults}
    spec = dataclasses.replace(spec, **filled)
    arch = ARCHITECTURES[spec.arch]
    if spec.input_size is None:
        spec = dataclasses.replace(spec, input_size=_init_card_size(spec) or arch.input_size)
    if not arch.accepts(spec.input_size):
        takes = f"only {arch.input_size}" if arch.min_input is None else f"{arch.min_input} to 1024"
        raise TrainError(f"{spec.arch} takes input sides of {takes} pixels, not {spec.input_size}")
    if spec.finetune_lr is None:
        spec = dataclasses.replace(spec, finetune_lr=spec.lr / 10)
    two_phase = family == "xception" and (spec.init != "random" or spec.cache_trunk)
    if spec.head_epochs is None:
        spec = dataclasses.replace(spec, head_epochs=max(1, spec.epochs // 4) if two_phase else 0)

    # Each field's own range and choices: the schema's (the same file spec_from_dict checks).
    problem = first_problem("train_spec", spec.to_dict())
    if problem:
        raise TrainError(f"training spec: {problem}")
    checks = [
        (0 <= spec.head_epochs <= spec.epochs, "head_epochs must be between 0 and epochs"),
        (not spec.cache_trunk or family == "xception", "cache_trunk is for Xception only"),
        (
            not spec.cache_trunk or spec.trainable_blocks in (1, 2),
            "cache_trunk trains the top 1 or 2 blocks: set trainable_blocks to 1 or 2",
        ),
        (
            len(spec.band) == 2 and 0 <= spec.band[0] <= spec.threshold <= spec.band[1] <= 1,
            "need 0 <= band lower <= threshold <= band upper <= 1",
        ),
    ]
    for ok, message in checks:
        if not ok:
            raise TrainError(message)
    return spec
