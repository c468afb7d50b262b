"""Meso4 and MesoInception4, rebuilt layer for layer from the MesoNet authors' code.

Afchar et al., "MesoNet: a Compact Facial Video Forgery Detection Network" (WIFS 2018), code at
github.com/DariusAf/MesoNet (Apache-2.0). Input: RGB 256x256 scaled to [0, 1]; output: one sigmoid
that is P(real). The authors' weight files are Keras 2.1.5 ``save_weights`` HDF5 files, which
Keras 3 loads by *layer order* (not by name), and that order follows the graph, i.e. the order of
the stages and of the inputs to each concatenation: do not reorder them. (Concatenating the
branches as [1, 3, 2, 4] still loads, and turns MesoInception_DF's 0.026 on df00204 into 0.563;
the reference-output test catches it.) Only ``keras`` is used, so the models run on any Keras 3
backend.
"""

from __future__ import annotations

import keras
from keras import layers

INPUT_SIZE = 256


def _conv_stage(x, filters: int, kernel: int, pool: int, name: str):
    """Conv (relu, same) -> BatchNorm -> MaxPool (same), as every Meso stage is built."""
    x = layers.Conv2D(filters, kernel, padding="same", activation="relu", name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.MaxPooling2D(pool_size=pool, padding="same", name=f"{name}_pool")(x)


def _inception_block(x, a: int, b: int, c: int, d: int, name: str):
    """The authors' InceptionLayer(a, b, c, d): four relu branches concatenated in this order.

    1x1; 1x1 -> 3x3; 1x1 -> 3x3 dilation 2; 1x1 -> 3x3 dilation 3. Branches 2 and 3 have the same
    weight shapes, so a swapped order would still load and silently give wrong scores.
    """

    def conv(t, filters: int, kernel: int, tag: str, dilation: int = 1):
        return layers.Conv2D(
            filters,
            kernel,
            padding="same",
            dilation_rate=dilation,
            activation="relu",
            name=f"{name}_{tag}",
        )(t)

    x1 = conv(x, a, 1, "b1_1x1")
    x2 = conv(conv(x, b, 1, "b2_1x1"), b, 3, "b2_3x3")
    x3 = conv(conv(x, c, 1, "b3_1x1"), c, 3, "b3_3x3_d2", dilation=2)
    x4 = conv(conv(x, d, 1, "b4_1x1"), d, 3, "b4_3x3_d3", dilation=3)
    x = layers.Concatenate(axis=-1, name=f"{name}_concat")([x1, x2, x3, x4])
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.MaxPooling2D(pool_size=2, padding="same", name=f"{name}_pool")(x)


def _head(x):
    """Flatten (1024) -> Dropout 0.5 -> Dense 16 -> LeakyReLU 0.1 -> Dropout 0.5 -> sigmoid."""
    x = layers.Flatten(name="head_flatten")(x)
    x = layers.Dropout(0.5, name="head_dropout1")(x)
    x = layers.Dense(16, name="head_dense16")(x)
    x = layers.LeakyReLU(negative_slope=0.1, name="head_lrelu")(x)
    x = layers.Dropout(0.5, name="head_dropout2")(x)
    return layers.Dense(1, activation="sigmoid", name="p_real")(x)


def build_meso4() -> keras.Model:
    """Meso4: four conv stages (8@3x3, 8@5x5, 16@5x5, 16@5x5; pools 2, 2, 2, 4) and the head.

    Returns:
        An uncompiled functional model, input (None, 256, 256, 3) in [0, 1], output P(real).
    """
    inputs = keras.Input(shape=(INPUT_SIZE, INPUT_SIZE, 3), name="image")
    x = _conv_stage(inputs, 8, 3, 2, "stage1")
    x = _conv_stage(x, 8, 5, 2, "stage2")
    x = _conv_stage(x, 16, 5, 2, "stage3")
    x = _conv_stage(x, 16, 5, 4, "stage4")
    return keras.Model(inputs, _head(x), name="meso4")


def build_mesoinception4() -> keras.Model:
    """MesoInception4: inception blocks (1,4,4,2) and (2,4,4,2), then Meso4's last two stages.

    Returns:
        An uncompiled functional model, input (None, 256, 256, 3) in [0, 1], output P(real).
    """
    inputs = keras.Input(shape=(INPUT_SIZE, INPUT_SIZE, 3), name="image")
    x = _inception_block(inputs, 1, 4, 4, 2, "incep1")
    x = _inception_block(x, 2, 4, 4, 2, "incep2")
    x = _conv_stage(x, 16, 5, 2, "stage3")
    x = _conv_stage(x, 16, 5, 4, "stage4")
    return keras.Model(inputs, _head(x), name="mesoinception4")
