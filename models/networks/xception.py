"""Xception (Chollet, 2017) with a one-unit sigmoid head: the FaceForensics++ baseline detector.

The backbone is ``keras.applications.Xception`` built without weights (nothing is downloaded; the
project's own weights come from training) and global-average pooled; the head is named so that a
training run can find, freeze or replace it. Input: RGB 299x299 scaled to [-1, 1]; output P(fake).
Only ``keras`` is used, so the model runs on any Keras 3 backend.
"""

from __future__ import annotations

import keras
from keras import layers

INPUT_SIZE = 299
HEAD_NAME = "dfi_head"
BACKBONE_NAME = "xception_backbone"


def build_xception(dropout: float = 0.2, input_size: int = INPUT_SIZE) -> keras.Model:
    """Xception backbone (no weights, no top, average pooling) + Dropout + Dense(1, sigmoid).

    Args:
        dropout: dropout rate before the head (only active in training).
        input_size: input side in pixels (Keras' Xception takes 71 or more). The weights do not
            depend on it, because the backbone ends in global average pooling; a smaller side
            trades detail for speed (about (299 / side)^2 times fewer operations).

    Returns:
        An uncompiled functional model, input (None, side, side, 3) in [-1, 1], output P(fake).
    """
    backbone = keras.applications.Xception(
        weights=None,  # never fetch ImageNet weights at construction (no network; docs/ARCHITECTURE.md)
        include_top=False,
        pooling="avg",
        input_shape=(input_size, input_size, 3),
        name=BACKBONE_NAME,
    )
    inputs = keras.Input(shape=(input_size, input_size, 3), name="image")
    features = backbone(inputs)
    x = layers.Dropout(dropout, name=f"{HEAD_NAME}_dropout")(features)
    outputs = layers.Dense(1, activation="sigmoid", name=HEAD_NAME)(x)
    return keras.Model(inputs, outputs, name="xception_dfi")
