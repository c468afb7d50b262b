"""The manifest rows a training run uses: its training and validation selections, by split."""

from __future__ import annotations

from pathlib import Path

from core.data.datasets import read_manifest
from core.training.networks import TrainError
from core.training.spec import TrainSpec


def select_rows(rows: list[dict], spec: TrainSpec) -> tuple[list[dict], list[dict]]:
    """(train rows, validation rows) of the manifest, by split name.

    Raises:
        TrainError: no training crops, or training data lacking a class it needs.
    """
    splits = sorted({r["split"] for r in rows})
    train_splits = spec.train_splits or [s for s in splits if s not in (spec.val_split, "test")]
    unknown = [s for s in train_splits + ([spec.val_split] if spec.val_split else []) if s not in splits]
    if unknown and spec.train_splits:
        raise TrainError(f"split(s) {', '.join(unknown)} not in {spec.data} (it has {', '.join(splits)})")
    excluded = set(spec.exclude_collections or ())
    train = [r for r in rows if r["split"] in train_splits and r["collection"] not in excluded]
    val = [r for r in rows if spec.val_split and r["split"] == spec.val_split and r["collection"] not in excluded]
    labels = {r["label"] for r in train}
    needed = {0} if spec.pseudo_fakes == "only" else {0, 1}
    if not train or not needed <= labels:
        what = "real crops" if needed == {0} else "both real and fake crops"
        raise TrainError(f"training needs {what} in split(s) {', '.join(train_splits) or '(none)'} of {spec.data}")
    return train, val


def load_rows(spec: TrainSpec) -> tuple[list[dict], list[dict]]:
    """Read the dataset manifest and split it for this spec."""
    return select_rows(read_manifest(Path(spec.data).expanduser()), spec)
