"""Model side of training: build a registry architecture, initialise it, freeze/unfreeze, export.

Model code uses ``keras`` and ``keras.ops`` only, so training runs on the TensorFlow and JAX
backends alike; the one backend-specific piece is :func:`distribution_scope` (how several GPUs
are used), which only runs when GPUs exist.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import h5py
import keras
import numpy as np

from core.errors import DFIError
from core.files import copy_atomic
from core.settings import keras_imagenet_cache_file

# Xception's exit-flow and middle-flow blocks, deepest last; fine-tuning unfreezes from the end.
XCEPTION_BLOCKS = tuple(f"block{i}_" for i in range(1, 15))


class TrainError(DFIError):
    """A training run cannot start or continue as asked (bad spec, missing init weights, …)."""


def build_architecture(architecture: str, input_size: int | None = None) -> keras.Model:
    """A fresh, weightless model of a registry architecture (``models.ARCHITECTURES``).

    ``input_size`` None means the architecture's native side.
    """
    from models import ARCHITECTURES

    if architecture not in ARCHITECTURES:
        raise TrainError(f"unknown architecture {architecture!r}: must be one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[architecture].build(input_size)


def imagenet_missing_message(settings) -> str:
    """One line naming where the ImageNet file was looked for, the other place, and the download."""
    cache = keras_imagenet_cache_file()
    if settings.imagenet_weights:
        where = (
            f"not found at {settings.imagenet_weights} (DFI_IMAGENET_WEIGHTS; the Keras cache, "
            f"{cache}, is read only when it is unset)"
        )
    else:
        where = f"not in the Keras cache ({cache}), and DFI_IMAGENET_WEIGHTS names no other file"
    return (
        f"ImageNet Xception weights {where}; get them with "
        "`python -m core models --download imagenet-xception`, or use --init random or a card id"
    )


def _load_imagenet(model: keras.Model, path: Path) -> None:
    """Load the ImageNet file into the model's Xception backbone, refusing plainly what is not one."""
    backbone = backbone_of(model)
    if backbone is None:
        raise TrainError("the Xception model has no nested backbone to load ImageNet weights into")
    try:
        backbone.load_weights(str(path))
    except (OSError, ValueError) as exc:  # not HDF5, or another network's layers and shapes
        raise TrainError(
            f"cannot load ImageNet Xception weights from {path}: it is not Keras' Xception "
            f"(no top) weights file ({type(exc).__name__})"
        ) from None


def backbone_of(model: keras.Model) -> keras.Model | None:
    """The nested Xception backbone model (the registry builds it as one layer), if any."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested[0] if nested else None


def _final_dense(model: keras.Model) -> keras.layers.Dense:
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise TrainError(f"{model.name} has no Dense output layer to train")
    return dense[-1]


def initialise(model: keras.Model, architecture: str, init: str, settings) -> str:
    """Load the starting weights into ``model``; returns a sentence saying what was loaded.

    Args:
        model: a fresh model of ``architecture``.
        architecture: registry architecture name.
        init: "random"; "imagenet" (Xception only, from ``settings.imagenet_weights_file()``:
            the ``imagenet_weights`` setting, else the Keras cache; never downloaded here); or a
            card id of the same architecture, whose verified weights are loaded. A card whose
            output is P(real) (the MesoNet authors') gets its last layer negated, which turns
            sigmoid(z) into sigmoid(-z) = 1 - P(real) = P(fake), the label training uses.

    Raises:
        TrainError: ImageNet asked for but absent, unreadable or not Xception; a card of another
            architecture.
        WeightsMissingError / WeightsHashError: the card's weights are missing or damaged.
    """
    if init == "random":
        return "random initialisation"
    if init == "imagenet":
        if architecture != "xception":
            raise TrainError(f"ImageNet weights exist only for Xception, not {architecture}")
        path = settings.imagenet_weights_file()
        if not path.is_file():
            raise TrainError(imagenet_missing_message(settings))
        _load_imagenet(model, path)
        return f"ImageNet Xception backbone ({path.name})"
    import models
    from models.weights import require_weights

    card = models.get_card(init, settings)
    if card.architecture != architecture:
        raise TrainError(
            f"--init {init} is a {card.architecture} card; training {architecture} needs one of the same architecture"
        )
    path = require_weights(card, settings)
    model.load_weights(str(path))
    if card.output == "p_real":
        dense = _final_dense(model)
        kernel, bias = dense.get_weights()
        dense.set_weights([-kernel, -bias])
    return f"weights of {card.id} ({path.name})"


def set_xception_phase(model: keras.Model, phase: int, trainable_blocks: int) -> None:
    """Phase 1: only the head trains (backbone frozen). Phase 2: the top ``trainable_blocks`` blocks
    of the backbone train too, with every BatchNormalization kept frozen (in inference mode), as
    Keras' fine-tuning guide does: small fine-tuning batches would ruin ImageNet statistics.
    """
    backbone = backbone_of(model)
    if backbone is None:
        raise TrainError("this model has no backbone to freeze")
    if phase == 1:
        backbone.trainable = False
        return
    backbone.trainable = True
    open_blocks = XCEPTION_BLOCKS[len(XCEPTION_BLOCKS) - trainable_blocks :] if trainable_blocks else ()
    for layer in backbone.layers:
        in_top = layer.name.startswith(open_blocks) if open_blocks else False
        layer.trainable = in_top and not isinstance(layer, keras.layers.BatchNormalization)


def count_params(model: keras.Model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return trainable, sum(int(np.prod(w.shape)) for w in model.weights)


def write_float16_copy(src: Path, dst: Path) -> None:
    """Copy a Keras ``.weights.h5`` file with every float32 array stored as float16.

    Keras' ``load_weights`` assigns each stored array to its variable, which casts it back to the
    variable's float32: the registry loads such a file unchanged, at half the size (Xception:
    ~83 MB -> ~42 MB; scores move by ~1e-3).
    """
    tmp = dst.with_name(f".{dst.name}.tmp")
    with h5py.File(src, "r") as fin, h5py.File(tmp, "w") as fout:

        def copy(group_in, group_out) -> None:
            group_out.attrs.update(dict(group_in.attrs))
            for name, item in group_in.items():
                if isinstance(item, h5py.Group):
                    copy(item, group_out.create_group(name))
                    continue
                data = item[()]
                if isinstance(data, np.ndarray) and data.dtype == np.float32:
                    data = data.astype(np.float16)
                out = group_out.create_dataset(name, data=data)
                out.attrs.update(dict(item.attrs))

        copy(fin, fout)
    tmp.replace(dst)


def copy_weights(src: Path, dst: Path, float16: bool) -> None:
    """Put the final weights file in place (as float16 when asked), atomically."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if float16:
        write_float16_copy(src, dst)
    else:
        copy_atomic(src, dst)


def distribution_scope(use_gpus: bool = True) -> tuple[contextlib.AbstractContextManager, int]:
    """Spread training over every visible GPU; returns (scope to build the model in, GPU count).

    TensorFlow: ``tf.distribute.MirroredStrategy`` (one replica per GPU). JAX: Keras'
    ``DataParallel`` distribution. With one GPU or none, a plain scope. Mixed precision is turned on
    whenever a GPU is used (float32 variables, float16 compute); on CPU it would only be slower.
    """
    backend = keras.backend.backend()
    n_gpus = 0
    scope: contextlib.AbstractContextManager = contextlib.nullcontext()
    if use_gpus and backend == "tensorflow":
        import tensorflow as tf

        n_gpus = len(tf.config.list_logical_devices("GPU"))
        if n_gpus > 1:
            scope = tf.distribute.MirroredStrategy().scope()
    elif use_gpus and backend == "jax":
        try:
            devices = keras.distribution.list_devices("gpu")
        except (RuntimeError, ValueError):  # jax raises when it has no GPU backend
            devices = []
        n_gpus = len(devices)
        if n_gpus > 1:
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    if n_gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    return scope, n_gpus
