"""Training-time augmentation of face crops (flip, JPEG re-compression, brightness/contrast, blur).

No rotation: the analyzer always hands the models upright crops, so rotating would only teach the
model poses it never sees. JPEG re-compression matters most: deepfake clips reach us re-encoded
at unknown quality, and a detector that keys on one compression level does not transfer.
Everything here is cv2/numpy on uint8 RGB arrays and takes an explicit ``numpy.random.Generator``,
so a seed reproduces a run.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges for :func:`augment_crop`. The defaults are mild on purpose."""

    flip_p: float = 0.5
    jpeg_p: float = 0.5
    jpeg_quality: tuple[int, int] = (40, 95)
    color_p: float = 0.5
    brightness: float = 0.15  # additive, as a fraction of 255
    contrast: float = 0.2  # multiplicative, 1 +- this
    blur_p: float = 0.2
    blur_sigma: tuple[float, float] = (0.3, 1.5)


def jpeg_recompress(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode an RGB uint8 image as JPEG at ``quality`` and decode it again."""
    # OpenCV's codecs work in BGR; convert so chroma subsampling hits the right channels.
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:  # cannot happen for a valid uint8 image; keep the input rather than fail a batch
        return image
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def adjust_brightness_contrast(image: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """``alpha * (image - mean) + mean + beta``, clipped to uint8 (contrast about the mean)."""
    x = image.astype(np.float32)
    mean = float(x.mean())
    return np.clip(alpha * (x - mean) + mean + beta, 0, 255).astype(np.uint8)


def augment_crop(image: np.ndarray, rng: np.random.Generator, config: AugmentConfig | None = None) -> np.ndarray:
    """Apply a random subset of the augmentations to one RGB uint8 crop.

    Args:
        image: (H, W, 3) uint8 RGB.
        rng: the random generator; the same state gives the same output.
        config: probabilities and ranges; defaults to :class:`AugmentConfig`.

    Returns:
        A new (H, W, 3) uint8 array (the input is never modified).
    """
    cfg = config or AugmentConfig()
    out = image
    if rng.random() < cfg.flip_p:
        out = out[:, ::-1]
    if rng.random() < cfg.color_p:
        alpha = 1.0 + rng.uniform(-cfg.contrast, cfg.contrast)
        beta = rng.uniform(-cfg.brightness, cfg.brightness) * 255.0
        out = adjust_brightness_contrast(out, alpha, beta)
    if rng.random() < cfg.blur_p:
        sigma = rng.uniform(*cfg.blur_sigma)
        out = cv2.GaussianBlur(np.ascontiguousarray(out), (0, 0), sigmaX=sigma)
    # Compression last, as it happens in the wild: edits first, then the upload re-encodes.
    if rng.random() < cfg.jpeg_p:
        out = jpeg_recompress(np.ascontiguousarray(out), int(rng.integers(*cfg.jpeg_quality)))
    return np.ascontiguousarray(out, dtype=np.uint8)


@dataclass(frozen=True)
class RoundtripConfig:
    """Ranges for :func:`format_roundtrip`: how far a crop's resolution and compression may move.

    Wide on purpose. In the labelled clips, format and label go together (many fakes are tight
    256 or 512 px face-crop videos, many reals are larger, differently compressed frames), so a
    detector can score well by reading the format. Giving every crop of both labels the same random
    format takes that signal away and leaves the manipulation itself to learn.
    """

    rescale_p: float = 0.85
    rescale: tuple[float, float] = (0.3, 1.0)  # the crop is shrunk to this fraction, then restored
    blur_p: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.2)
    jpeg_p: float = 0.85
    jpeg_quality: tuple[int, int] = (30, 96)


def format_roundtrip(image: np.ndarray, rng: np.random.Generator, config: RoundtripConfig | None = None) -> np.ndarray:
    """Down- and up-scale, blur and re-compress one RGB uint8 crop at random; same shape out.

    Args:
        image: (H, W, 3) uint8 RGB.
        rng: the random generator; the same state gives the same output.
        config: ranges; defaults to :class:`RoundtripConfig`.
    """
    cfg = config or RoundtripConfig()
    out = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = out.shape[:2]
    if rng.random() < cfg.rescale_p and min(h, w) > 8:
        f = rng.uniform(*cfg.rescale)
        small = cv2.resize(out, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA)
        # Upscalers differ between players and platforms; use either.
        up = cv2.INTER_LINEAR if rng.random() < 0.5 else cv2.INTER_CUBIC
        out = cv2.resize(small, (w, h), interpolation=up)
    if rng.random() < cfg.blur_p:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=rng.uniform(*cfg.blur_sigma))
    if rng.random() < cfg.jpeg_p:
        out = jpeg_recompress(out, int(rng.integers(*cfg.jpeg_quality)))
    return np.ascontiguousarray(out, dtype=np.uint8)
