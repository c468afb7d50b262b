"""A loaded detector: resize and preprocess face crops per its card, one batched forward pass.

The forward pass is Keras' ``predict_on_batch``: one call for the whole batch, on any backend (on
TensorFlow it runs a traced graph). Measured on this 2-core CPU with Xception and 32 crops at 299 px
(CPU time, as the machine was shared): predict_on_batch 192 and a hand-written ``tf.function`` 189
CPU-ms per crop, with the same first-call cost (~7.5 CPU-s) and 2.2 GB peak memory; an eager
``model(x, training=False)`` took 199-216 CPU-ms per crop, 14-18 CPU-s on its first call and 9 GB
peak memory. So the plain Keras call is kept: as fast, and no backend-specific code. XLA is not
used (6-8x slower on this CPU, per the issue).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import cv2
import keras
import numpy as np

from models.calibration import apply_calibration
from models.cards import ModelCard


def resize_crop(crop: np.ndarray, size: int) -> np.ndarray:
    """``crop`` (H, W, 3) uint8 resized to (size, size, 3): area when shrinking, bilinear when growing."""
    height, width = crop.shape[:2]
    if (height, width) == (size, size):
        return crop
    # INTER_AREA averages source pixels (no aliasing on big crops); for enlarging it degenerates
    # to nearest-like blocks, so bilinear is used there.
    shrinking = height * width >= size * size
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def _check_crop(crop: np.ndarray, position: int) -> np.ndarray:
    crop = np.asarray(crop)
    if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] == 0 or crop.shape[1] == 0:
        raise ValueError(f"crop {position} has shape {crop.shape}; expected (H, W, 3) RGB")
    if crop.dtype != np.uint8:
        raise ValueError(f"crop {position} has dtype {crop.dtype}; expected uint8 RGB")
    return crop


def preprocess_crops(crops: np.ndarray | Sequence[np.ndarray], input_size: int, mode: str) -> np.ndarray:
    """Crops -> float32 (N, input_size, input_size, 3), resized and scaled as a card says.

    Args:
        crops: uint8 RGB, an (N, H, W, 3) array or a list of (H, W, 3) arrays of any sizes.
        input_size: the card's input side.
        mode: ``unit`` (x / 255, MesoNet) or ``xception`` (x / 127.5 - 1, i.e. [-1, 1]).

    Raises:
        ValueError: a crop is not an (H, W, 3) uint8 array, or an unknown mode.
    """
    if mode not in ("unit", "xception"):
        raise ValueError(f"unknown preprocess {mode!r}")
    if isinstance(crops, np.ndarray) and crops.ndim == 4:
        if crops.shape[0] == 0:
            return np.zeros((0, input_size, input_size, 3), np.float32)
        _check_crop(crops[0], 0)
        same = crops.shape[1:3] == (input_size, input_size)
        batch = crops if same else np.stack([resize_crop(crop, input_size) for crop in crops])
    else:
        checked = [_check_crop(crop, i) for i, crop in enumerate(crops)]
        if not checked:
            return np.zeros((0, input_size, input_size, 3), np.float32)
        batch = np.stack([resize_crop(crop, input_size) for crop in checked])
    batch = batch.astype(np.float32)
    if mode == "unit":
        batch /= 255.0
    else:
        batch /= 127.5
        batch -= 1.0
    return batch


class Detector:
    """One model with its card: ``predict(crops)`` gives calibrated p_fake per crop.

    Thread-safe for inference: Streamlit shares one instance across sessions (cache_resource).
    """

    def __init__(self, card: ModelCard, model: keras.Model):
        self.card = card
        self.model = model
        self._lock = threading.Lock()

    def with_card(self, card: ModelCard) -> Detector:
        """The same loaded network (and its lock) under an edited card (threshold, band, text)."""
        twin = Detector(card, self.model)
        twin._lock = self._lock
        return twin

    def preprocess(self, crops: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """Crops -> float32 (N, S, S, 3) as this card's model expects (see :func:`preprocess_crops`)."""
        return preprocess_crops(crops, self.card.input_size, self.card.preprocess)

    def predict(self, crops: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """p_fake for each crop, in one batched forward pass, calibrated as the card says.

        Args:
            crops: uint8 RGB, either an (N, H, W, 3) array or a list of (H, W, 3) arrays of any
                sizes; each is resized to the card's input size.

        Returns:
            float64 array (N,) of p_fake in [0, 1] (empty for no crops): :meth:`predict_raw`
            passed through the card's ``calibration`` (unchanged when the card has none).

        Raises:
            ValueError: a crop is not an (H, W, 3) uint8 array.
        """
        return apply_calibration(self.card.calibration, self.predict_raw(crops))

    def predict_raw(self, crops: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
        """The network's own p_fake for each crop, before calibration (for fitting a calibration
        and for checking reloaded weights against the trained network).

        Takes and returns what :meth:`predict` does; ``p_real`` outputs are already turned
        into p_fake.
        """
        batch = self.preprocess(crops)
        if batch.shape[0] == 0:
            return np.zeros((0,), np.float64)
        # One pass at a time: Keras builds its predict function lazily (not thread-safe), and two
        # concurrent passes would only split the same cores.
        with self._lock:
            raw = self.model.predict_on_batch(batch)
        scores = np.asarray(raw, dtype=np.float64).reshape(batch.shape[0])
        if self.card.output == "p_real":
            scores = 1.0 - scores
        return np.clip(scores, 0.0, 1.0)
