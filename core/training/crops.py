"""Training input: a ``keras.utils.PyDataset`` over a face-crop manifest.

Each batch is read from the PNG crops, optionally turned into self-blended pseudo-fakes, augmented,
resized and scaled exactly as the registry does at inference, and returned with per-sample
weights for class balance. Only numpy and OpenCV run here, so the same dataset feeds every Keras
backend, and OpenCV releases the GIL, so PyDataset's worker threads decode in parallel.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import keras
import numpy as np

from core.training.augment import augment_crop, format_roundtrip
from core.training.pseudo_fakes import self_blend

BALANCE_MODES = ("none", "weights", "sources", "sampling")
PSEUDO_FAKE_MODES = ("off", "add", "only")
# Decoded crops are kept in memory when the set is at most this many crops (~0.3 MB each at the
# dataset's 320 px cap): small sets are then read from disk once instead of once per epoch.
CACHE_MAX_ITEMS = 4000


def load_rgb(path) -> np.ndarray:
    """Read an image file as RGB uint8 (OpenCV reads BGR)."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read crop {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def prepare_batch(images: Sequence[np.ndarray], input_size: int, preprocess: str) -> np.ndarray:
    """Resize crops to the model's input and scale them as its card says (same as inference).

    Args:
        images: RGB uint8 crops of any size.
        input_size: the card's input side.
        preprocess: "unit" (x / 255) or "xception" (x / 127.5 - 1).

    Returns:
        float32 array (N, input_size, input_size, 3).

    Raises:
        ValueError: a crop is not an (H, W, 3) uint8 array, or an unknown preprocess.
    """
    # The registry's own resize and scaling, so training sees exactly the inputs inference does.
    from models.detector import preprocess_crops

    return preprocess_crops(images, input_size, preprocess)


def plan_items(rows: Sequence[dict], pseudo_fakes: str) -> list[tuple[int, bool]]:
    """The (row index, is_pseudo_fake) items of one epoch before balancing.

    "add" keeps every row and adds one pseudo-fake per real row; "only" drops the genuine fakes
    (train from real clips alone, as SBI does) and adds one pseudo-fake per real row.
    """
    if pseudo_fakes not in PSEUDO_FAKE_MODES:
        raise ValueError(f"pseudo_fakes must be one of {', '.join(PSEUDO_FAKE_MODES)}")
    items = [(i, False) for i, r in enumerate(rows) if pseudo_fakes != "only" or r["label"] == 0]
    if pseudo_fakes != "off":
        items += [(i, True) for i, r in enumerate(rows) if r["label"] == 0]
    return items


def item_label(rows: Sequence[dict], item: tuple[int, bool]) -> int:
    return 1 if item[1] else int(rows[item[0]]["label"])


def item_weights(rows: Sequence[dict], items: Sequence[tuple[int, bool]], balance: str) -> np.ndarray:
    """A training weight per item, normalised to mean 1 with equal total weight per class.

    - "weights": inverse class frequency.
    - "sources": first, within each collection (``row["collection"]``), real and fake items get
      equal total weight, so a collection holding mostly fakes (DFDC's face-crop clips, a
      generator's demos) cannot teach "this source means fake"; a collection holding one label
      only keeps half its weight. Then the classes are balanced overall.
    - "none" and "sampling": all ones (sampling balances by repeating items instead).
    """
    labels = np.array([item_label(rows, it) for it in items], dtype=np.int64)
    weights = np.ones(len(items), dtype=np.float64)
    if balance == "sources":
        collections = np.array([rows[i].get("collection", "") for i, _ in items], dtype=object)
        for name in set(collections.tolist()):
            in_c = collections == name
            counts = [int((in_c & (labels == c)).sum()) for c in (0, 1)]
            for c in (0, 1):
                if counts[c]:
                    share = 0.5 if all(counts) else 0.25
                    weights[in_c & (labels == c)] = share * in_c.sum() / counts[c]
    if balance in ("weights", "sources"):
        totals = [weights[labels == c].sum() for c in (0, 1)]
        if min(totals) > 0:
            whole = weights.sum()
            for c in (0, 1):
                weights[labels == c] *= whole / (2.0 * totals[c])
    return weights * (len(items) / weights.sum()) if len(items) else weights


class CropDataset(keras.utils.PyDataset):
    """Batches ``(x, y, sample_weight)`` of face crops from manifest rows.

    Args:
        rows: manifest rows (core.data.datasets.read_manifest), each with "file" and "label".
        input_size: model input side in pixels.
        preprocess: the card's preprocess ("unit" or "xception").
        batch_size: crops per batch.
        training: shuffle, augment and make fresh pseudo-fakes each epoch; else a fixed order.
        augment: apply core.training.augment (training only).
        pseudo_fakes: "off", "add" or "only" (training only; see :func:`plan_items`).
        balance: "weights" (inverse class frequency as sample weights), "sources" (balanced
            within each collection too, see :func:`item_weights`), "sampling" (oversample the
            smaller class each epoch), or "none".
        roundtrip: pass every training crop through :func:`core.training.augment.format_roundtrip`.
        seed: base seed; epoch e uses seed + e, so a run is reproducible.
        steps: batches per epoch (default: enough to cover the items once).
        **kwargs: PyDataset's workers / use_multiprocessing / max_queue_size.
    """

    def __init__(
        self,
        rows: Sequence[dict],
        input_size: int,
        preprocess: str,
        batch_size: int,
        training: bool = False,
        augment: bool = False,
        pseudo_fakes: str = "off",
        balance: str = "weights",
        seed: int = 0,
        steps: int | None = None,
        roundtrip: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if balance not in BALANCE_MODES:
            raise ValueError(f"balance must be one of {', '.join(BALANCE_MODES)}")
        if not rows:
            raise ValueError("no crops to read")
        self.rows = list(rows)
        self.input_size, self.preprocess, self.batch_size = input_size, preprocess, batch_size
        self.training, self.augment, self.balance, self.seed = training, augment, balance, seed
        self.roundtrip = roundtrip
        self.base_items = plan_items(self.rows, pseudo_fakes if training else "off")
        labels = np.array([item_label(self.rows, it) for it in self.base_items])
        counts = np.bincount(labels, minlength=2)
        self.class_counts = (int(counts[0]), int(counts[1]))
        self.item_weight = dict(zip(self.base_items, item_weights(self.rows, self.base_items, balance)))
        self.epoch = 0
        self.items = self._epoch_items()
        self.steps = steps or max(1, -(-len(self.items) // batch_size))
        self._cache: dict[int, np.ndarray] | None = {} if len(self.rows) <= CACHE_MAX_ITEMS else None

    def _epoch_items(self) -> list[tuple[int, bool]]:
        items = list(self.base_items)
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.training and self.balance == "sampling" and min(self.class_counts) > 0:
            by_class = [[it for it in items if item_label(self.rows, it) == c] for c in (0, 1)]
            small, large = sorted(by_class, key=len)
            extra = rng.choice(len(small), size=len(large) - len(small), replace=True)
            items = items + [small[i] for i in extra]
        if self.training:
            items = [items[i] for i in rng.permutation(len(items))]
        return items

    def __len__(self) -> int:
        return self.steps

    def _image(self, index: int) -> np.ndarray:
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        image = load_rgb(self.rows[index]["file"])
        if self._cache is not None:
            self._cache[index] = image
        return image

    def __getitem__(self, idx: int):
        n = len(self.items)
        picked = [self.items[(idx * self.batch_size + k) % n] for k in range(self.batch_size)]
        if not self.training:
            picked = picked[: max(0, min(self.batch_size, n - idx * self.batch_size))] or picked[:1]
        # One generator per (epoch, batch): reproducible whatever order the worker threads run in.
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        images, labels = [], []
        for row_index, pseudo in picked:
            image = self._image(row_index)
            if pseudo:
                image, _ = self_blend(image, rng)
            if self.training and self.augment:
                image = augment_crop(image, rng)
            if self.training and self.roundtrip:
                image = format_roundtrip(image, rng)
            images.append(image)
            labels.append(1 if pseudo else int(self.rows[row_index]["label"]))
        y = np.asarray(labels, dtype=np.float32).reshape(-1, 1)
        weights = np.asarray([self.item_weight[item] for item in picked], dtype=np.float32)
        return prepare_batch(images, self.input_size, self.preprocess), y, weights

    def on_epoch_end(self) -> None:
        self.epoch += 1
        if self.training:
            self.items = self._epoch_items()
