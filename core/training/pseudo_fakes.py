"""Self-Blended Images: pseudo-fakes made from a real face crop alone.

After Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images" (CVPR 2022): take a real
face, make a slightly altered copy of it (colour and frequency jitter, a small scale and shift),
and blend that copy back into the original through a soft, irregular face-shaped mask. The result
carries the generic traces of face swapping (a blending boundary, colour and resolution mismatch
between the inner face and its surroundings) without any identity change, so a detector trained on
it learns those traces rather than the quirks of one manipulation method.

Differences from the paper, and why:
- MTCNN gives five keypoints, not the 68/81 landmarks SBI takes the convex hull of, and the
  manifest keeps only boxes. The mask is therefore an ellipse over the face box inside the crop
  (the analyzer's crops are the face box enlarged by ``margin``), then elastically deformed and
  blurred, which is what SBI does to its hull too.
- The target is always the untouched original, so the output differs from the input only where the
  mask is non-zero; SBI sometimes alters the target instead, which changes the whole image and adds
  nothing a detector should learn from a crop.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# SBI draws the blend ratio from this set: often a full paste, sometimes a faint one.
BLEND_RATIOS = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)
MASK_FLOOR = 1e-3  # mask values below this are set to 0, so "outside the mask" is exact


@dataclass(frozen=True)
class SelfBlendConfig:
    """Ranges for :func:`self_blend`; defaults follow the SBI paper's scale where it has one."""

    margin: float = 1.3  # the crop is the face box times this (core.settings.crop_margin)
    scale: tuple[float, float] = (0.95, 1.05)
    shift: float = 0.03  # fraction of the side
    rgb_shift: float = 20.0
    hue_shift: float = 6.0  # OpenCV hue units (0-180)
    sat_val_scale: float = 0.15
    elastic_alpha: float = 0.06  # displacement, fraction of the side
    elastic_sigma: float = 0.08  # smoothness of the displacement field, fraction of the side


def _color_jitter(image: np.ndarray, rng: np.random.Generator, cfg: SelfBlendConfig) -> np.ndarray:
    x = image.astype(np.float32) + rng.uniform(-cfg.rgb_shift, cfg.rgb_shift, size=3)
    hsv = cv2.cvtColor(np.clip(x, 0, 255).astype(np.uint8), cv2.COLOR_RGB2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-cfg.hue_shift, cfg.hue_shift)) % 180
    hsv[..., 1:] *= 1.0 + rng.uniform(-cfg.sat_val_scale, cfg.sat_val_scale, size=2)
    hsv = np.clip(hsv, 0, [179, 255, 255]).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)


def _frequency_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Either lose detail (downscale and back, like a low-resolution swapped face) or sharpen."""
    h, w = image.shape[:2]
    if rng.random() < 0.5:
        f = rng.uniform(0.4, 0.85)
        small = cv2.resize(image, (max(1, int(w * f)), max(1, int(h * f))), interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    blurred = cv2.GaussianBlur(image, (0, 0), sigmaX=1.0).astype(np.float32)
    amount = rng.uniform(0.3, 1.0)
    return np.clip(image + amount * (image - blurred), 0, 255).astype(np.uint8)


def _scale_shift(image: np.ndarray, rng: np.random.Generator, cfg: SelfBlendConfig) -> np.ndarray:
    h, w = image.shape[:2]
    s = rng.uniform(*cfg.scale)
    tx, ty = rng.uniform(-cfg.shift, cfg.shift, size=2) * (w, h)
    matrix = np.array([[s, 0, (1 - s) * w / 2 + tx], [0, s, (1 - s) * h / 2 + ty]], np.float32)
    return cv2.warpAffine(image, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


def face_mask(shape: tuple[int, int], rng: np.random.Generator, config: SelfBlendConfig | None = None) -> np.ndarray:
    """A soft, irregular face mask for a crop of ``shape`` (H, W): float32 in [0, 1].

    An ellipse over the inner face (the face box is the crop's centre ``1/margin``), elastically
    deformed so its outline is never a clean curve, then blurred so the blend has no hard edge.
    """
    cfg = config or SelfBlendConfig()
    h, w = shape
    box_w, box_h = w / cfg.margin, h / cfg.margin
    center = (w / 2 + rng.uniform(-0.03, 0.03) * w, h / 2 + rng.uniform(-0.02, 0.03) * h)
    axes = (box_w / 2 * rng.uniform(0.65, 0.9), box_h / 2 * rng.uniform(0.75, 0.92))
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (center, (2 * axes[0], 2 * axes[1]), 0.0), 1.0, thickness=-1)

    # Elastic deformation: a smooth random displacement field applied with remap.
    sigma = max(1.0, cfg.elastic_sigma * w)
    alpha = cfg.elastic_alpha * w
    dx = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma)
    dy = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma)
    # Normalise so alpha is the largest displacement whatever the blur did to the field's scale.
    dx *= alpha / (np.abs(dx).max() + 1e-6)
    dy *= alpha / (np.abs(dy).max() + 1e-6)
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    mask = cv2.remap(mask, grid_x + dx, grid_y + dy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)

    blur = max(1.0, rng.uniform(0.015, 0.045) * w)
    mask = cv2.GaussianBlur(mask, (0, 0), blur)
    mask /= max(float(mask.max()), 1e-6)
    mask[mask < MASK_FLOOR] = 0.0
    return mask


def self_blend(
    image: np.ndarray, rng: np.random.Generator, config: SelfBlendConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Make one self-blended pseudo-fake from a real face crop (label it 1 = FAKE).

    Args:
        image: (H, W, 3) uint8 RGB face crop as the analyzer makes them (face box times margin).
        rng: the random generator; the same state gives the same output.
        config: ranges; defaults to :class:`SelfBlendConfig`.

    Returns:
        ``(fake, mask)``: the blended (H, W, 3) uint8 image, and the float32 (H, W) mask actually
        used (blend ratio included). ``fake`` equals ``image`` wherever ``mask`` is 0.
    """
    cfg = config or SelfBlendConfig()
    image = np.ascontiguousarray(image, dtype=np.uint8)
    source = _color_jitter(image, rng, cfg)
    source = _frequency_jitter(source, rng)
    source = _scale_shift(source, rng, cfg)
    mask = face_mask(image.shape[:2], rng, cfg) * float(rng.choice(BLEND_RATIOS))
    m = mask[..., None]
    blended = source.astype(np.float32) * m + image.astype(np.float32) * (1.0 - m)
    fake = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return fake, mask.astype(np.float32)
