"""Where each detector looked: Grad-CAM heatmaps of p_fake on a clip's face crops.

Grad-CAM (Selvaraju et al., ICCV 2017), as in the Keras 3 example "Grad-CAM class activation
visualization": the gradient of the score with respect to the last convolutional block's
activations, averaged over space, weights each channel of that block; the positive part of the
weighted sum is the map. The target layer is Xception's ``block14_sepconv2_act`` and, for MesoNet
and any other family, the last convolution in the graph. No library was added: tf-keras-vis and
tf-explain were written for tf.keras (Keras 2), eli5's Keras 3 Grad-CAM comes with a much larger
package, and the method itself is twenty lines here (``_tensorflow_gradcam``).

What is explained is the network's own p_fake (for ``"output": "p_real"`` cards, 1 - p_real),
before any calibration on the card: a calibration is monotone, so it rescales the gradient by a
positive factor per crop and leaves the normalised map unchanged. The gradient is taken of the
pre-sigmoid logit rather than of the probability: the two differ by the positive factor
sigmoid'(z) per crop (again invisible after normalisation), and the logit does not vanish on a
crop the network is very sure about.

Reading a map: 1 = the region that pushed this detector's score towards "fake" the most, 0 = no
push towards fake (regions that pushed towards "real" are 0 too). A map that is 0 everywhere
(``is_flat``) means nothing in the crop pushed the score towards fake, e.g. a grey crop, where
the gradient is zero. A map shows what moved the score, not proof of manipulation.

Only runs when asked (the page's toggle, ``analyze --explain``, ``bench --explain``), on the crops
already in a ClipReport; one batched pass per detector per clip.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    import keras

    from models.detector import Detector

METHOD = "Grad-CAM"
# Per family, the activation whose map is explained; families not listed use their last convolution.
TARGET_LAYERS = {"xception": "block14_sepconv2_act"}
_CONV_CLASSES = ("Conv2D", "SeparableConv2D", "DepthwiseConv2D")
OVERLAY_ALPHA = 0.45  # share of the colour map in an overlay; the face stays readable under it


@dataclass(frozen=True)
class _Explainer:
    """A detector's network split for Grad-CAM, and the compiled pass that uses it."""

    target_layer: str
    map_shape: tuple[int, int]  # the target layer's spatial size (the map's native resolution)
    run: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # batch -> (cams, raw p_fake)


_explainers: weakref.WeakKeyDictionary[keras.Model, _Explainer] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def explain(detector: Detector, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
    """One Grad-CAM heatmap of p_fake per crop, in one batched pass.

    Args:
        detector: a loaded detector (any registered family, including uploaded weights).
        crops: uint8 RGB (H, W, 3) arrays of any sizes (as in ``ClipReport.crops``).

    Returns:
        One float32 (H, W) array per crop, at that crop's own size, finite, in [0, 1]; all zeros
        where nothing pushed the score towards fake (see :func:`is_flat`).

    Raises:
        ValueError: a crop is not an (H, W, 3) uint8 array, or the network has no convolution.
    """
    crops = list(crops)
    if not crops:
        return []
    cams, _ = explain_batch(detector, detector.preprocess(crops))
    return [_to_crop_size(cam, crop.shape[:2]) for cam, crop in zip(cams, crops)]


def explain_batch(detector: Detector, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM on a preprocessed batch: (maps (N, h, w) in [0, 1] at the target layer's
    resolution, the network's raw p_fake (N,) before any card calibration)."""
    explainer = _explainer_for(detector)
    with _lock:  # Keras/TF trace lazily and not thread-safe; concurrent passes would only share cores
        cams, p_fake = explainer.run(np.ascontiguousarray(batch, dtype=np.float32))
    return np.stack([_normalise(cam) for cam in cams]), p_fake.astype(np.float64)


def target_layer(detector: Detector) -> str:
    """The name of the layer whose activations a detector's maps are made from."""
    return _explainer_for(detector).target_layer


def map_shape(detector: Detector) -> tuple[int, int]:
    """The native (rows, columns) of a detector's maps before they are resized to a crop."""
    return _explainer_for(detector).map_shape


def is_flat(heatmap: np.ndarray) -> bool:
    """Whether a map is zero everywhere: nothing in the crop pushed the score towards fake."""
    return not bool(np.any(np.asarray(heatmap) > 0))


def overlay(crop: np.ndarray, heatmap: np.ndarray, alpha: float = OVERLAY_ALPHA) -> np.ndarray:
    """The crop with its heatmap blended in as colours (dark blue = 0 ... red = 1).

    Args:
        crop: uint8 RGB (H, W, 3).
        heatmap: float (h, w) in [0, 1]; resized to the crop when its size differs.
        alpha: weight of the colour map.

    Returns:
        uint8 RGB (H, W, 3); a flat map gives the crop evenly tinted blue, never a blank image.
    """
    crop = np.asarray(crop, dtype=np.uint8)
    height, width = crop.shape[:2]
    heat = np.nan_to_num(np.asarray(heatmap, dtype=np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    if heat.shape != (height, width):
        heat = _resize(heat, (height, width))
    levels = np.round(np.clip(heat, 0.0, 1.0) * 255).astype(np.uint8)
    # applyColorMap takes (H, W) uint8 and returns BGR; JET reads as "cold to hot" to most people.
    colours = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    mixed = (1.0 - alpha) * crop.astype(np.float32) + alpha * colours.reshape(crop.shape).astype(np.float32)
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)


def _normalise(cam: np.ndarray) -> np.ndarray:
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    cam = np.maximum(cam, 0.0)
    peak = float(cam.max()) if cam.size else 0.0
    # A zero (or denormal) peak: no push towards fake anywhere; a flat map, not 0/0.
    return cam / peak if peak > 1e-12 else np.zeros_like(cam)


def _resize(heat: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    height, width = max(int(shape[0]), 1), max(int(shape[1]), 1)
    # Bilinear: the map is coarse (Xception's is 4x4 at 128 px input); smooth blobs, no blocks.
    return cv2.resize(heat.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)


def _to_crop_size(cam: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    out = _resize(cam, shape).reshape(int(shape[0]), int(shape[1]))
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0).astype(np.float32)


def _explainer_for(detector: Detector) -> _Explainer:
    model = detector.model
    sign = -1.0 if detector.card.output == "p_real" else 1.0
    with _lock:
        explainer = _explainers.get(model)
        if explainer is None:
            explainer = _build(model, detector.card.family, sign)
            _explainers[model] = explainer
    return explainer


def _build(model: keras.Model, family: str, sign: float) -> _Explainer:
    """Split ``model`` into (input -> [target activation, features before the last Dense]) and the
    rest of the head, and compile the Grad-CAM pass over them."""
    import keras

    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense) or head.units != 1:
        raise ValueError(f"{model.name}: expected a one-unit Dense output layer, not {head.name}")
    container = next((layer for layer in model.layers if isinstance(layer, keras.Model)), None)
    name = TARGET_LAYERS.get(family)
    if container is not None:
        # A nested backbone (Xception): its graph gives [target, backbone output]; the layers after
        # it in the outer model (dropout, identity at inference) are applied in the pass.
        name = name if name in {layer.name for layer in container.layers} else _last_conv(container)
        inner = keras.Model(container.inputs, [container.get_layer(name).output, container.outputs[0]])
        after = model.layers[model.layers.index(container) + 1 : -1]
    else:
        name = name if name in {layer.name for layer in model.layers} else _last_conv(model)
        inner = keras.Model(model.inputs, [model.get_layer(name).output, head.input])
        after = []
    shape = tuple(int(d) for d in inner.outputs[0].shape[1:3])
    return _Explainer(name, shape, _tensorflow_gradcam(inner, after, head, sign))


def _last_conv(model: keras.Model) -> str:
    convs = [layer.name for layer in model.layers if type(layer).__name__ in _CONV_CLASSES]
    if not convs:
        raise ValueError(f"{model.name} has no convolution to explain")
    return convs[-1]


def _tensorflow_gradcam(inner, after, head, sign: float):
    """The one backend-specific piece: the compiled Grad-CAM pass, with TensorFlow's GradientTape.

    TensorFlow is the app's Keras backend (requirements.txt); the model code stays keras-only so
    training could run elsewhere, but explaining needs a gradient, and each backend spells that its
    own way (jax.grad, torch.autograd). On another backend this raises a plain error.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"heatmaps need the TensorFlow backend of Keras, not {keras.backend.backend()}")
    import tensorflow as tf

    sigmoid = head.activation is keras.activations.sigmoid
    size = inner.inputs[0].shape[1:]

    @tf.function(input_signature=[tf.TensorSpec((None, *size), tf.float32)], reduce_retracing=True)
    def run(batch):
        with tf.GradientTape() as tape:
            # Watching the input records the whole pass even for frozen (non-trainable) weights;
            # in a traced graph only the path from the score back to the target is differentiated.
            tape.watch(batch)
            activations, features = inner(batch, training=False)
            for layer in after:
                features = layer(features, training=False)
            logit = tf.matmul(features, head.kernel) + head.bias
            score = sign * logit[:, 0] if sigmoid else sign * head.activation(logit)[:, 0]
        grads = tape.gradient(score, activations)
        weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # one weight per channel
        cams = tf.nn.relu(tf.reduce_sum(activations * weights, axis=-1))
        p_out = tf.sigmoid(logit[:, 0]) if sigmoid else head.activation(logit)[:, 0]
        p_fake = 1.0 - p_out if sign < 0 else p_out
        return cams, p_fake

    def call(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cams, p_fake = run(tf.convert_to_tensor(batch))
        return cams.numpy(), p_fake.numpy()

    return call
