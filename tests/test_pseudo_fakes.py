"""Self-blended pseudo-fakes (core.training.pseudo_fakes) and training augmentation (core.training.augment)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from core.training.augment import AugmentConfig, adjust_brightness_contrast, augment_crop, jpeg_recompress
from core.training.pseudo_fakes import BLEND_RATIOS, face_mask, self_blend


@pytest.fixture(scope="module")
def face_crop() -> np.ndarray:
    """A crop like the analyzer's: the astronaut's face box (x 182-265, y 64-171) times 1.3."""
    image = skimage.data.astronaut()
    cx, cy, side = 223, 118, int(1.3 * 107)
    crop = image[cy - side // 2 : cy + side // 2, cx - side // 2 : cx + side // 2]
    return cv2.resize(crop, (160, 160), interpolation=cv2.INTER_AREA)


@pytest.mark.parametrize("seed", range(6))
def test_self_blend_changes_only_inside_the_mask(face_crop, seed):
    fake, mask = self_blend(face_crop, np.random.default_rng(seed))
    assert fake.shape == face_crop.shape and fake.dtype == np.uint8
    assert mask.shape == face_crop.shape[:2] and mask.dtype == np.float32
    assert 0.0 <= mask.min() and mask.max() <= 1.0
    outside = mask == 0
    assert outside.any() and (~outside).any()
    np.testing.assert_array_equal(fake[outside], face_crop[outside])
    changed = np.abs(fake.astype(int) - face_crop.astype(int)).max(axis=2) > 0
    assert changed.sum() > 0.05 * changed.size  # a real blend, not a no-op
    assert not (changed & outside).any()


def test_mask_is_soft_centred_and_clear_of_the_border(face_crop):
    mask = face_mask(face_crop.shape[:2], np.random.default_rng(0))
    assert mask.max() == pytest.approx(1.0)
    # Soft: many intermediate values (a blurred boundary), not a hard 0/1 stencil.
    assert ((mask > 0.05) & (mask < 0.95)).sum() > 0.05 * mask.size
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    assert abs(xs.mean() - w / 2) < 0.1 * w and abs(ys.mean() - h / 2) < 0.15 * h
    # The crop's outer frame (background beyond the face box) is at most touched by the blur's tail.
    for seed in range(10):
        mask = face_mask((160, 160), np.random.default_rng(seed))
        border = np.concatenate([mask[:3].ravel(), mask[-3:].ravel(), mask[:, :3].ravel(), mask[:, -3:].ravel()])
        assert border.max() < 0.05


def test_blend_ratio_comes_from_the_sbi_set(face_crop):
    peaks = {round(float(self_blend(face_crop, np.random.default_rng(s))[1].max()), 2) for s in range(40)}
    assert peaks <= {round(r, 2) for r in BLEND_RATIOS}
    assert len(peaks) >= 3  # faint and full blends both occur


def test_self_blend_is_deterministic_per_seed(face_crop):
    a, ma = self_blend(face_crop, np.random.default_rng(7))
    b, mb = self_blend(face_crop, np.random.default_rng(7))
    c, _ = self_blend(face_crop, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ma, mb)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("shape", [(50, 50, 3), (120, 90, 3), (320, 320, 3)])
def test_self_blend_any_crop_size(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    fake, mask = self_blend(image, np.random.default_rng(1))
    assert fake.shape == shape and mask.shape == shape[:2]
    np.testing.assert_array_equal(fake[mask == 0], image[mask == 0])


def test_self_blend_does_not_modify_its_input(face_crop):
    before = face_crop.copy()
    self_blend(face_crop, np.random.default_rng(0))
    np.testing.assert_array_equal(face_crop, before)


def test_augment_is_deterministic_and_keeps_shape(face_crop):
    a = augment_crop(face_crop, np.random.default_rng(3))
    b = augment_crop(face_crop, np.random.default_rng(3))
    assert a.shape == face_crop.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_augment_with_all_probabilities_zero_is_identity(face_crop):
    off = AugmentConfig(flip_p=0, jpeg_p=0, color_p=0, blur_p=0)
    np.testing.assert_array_equal(augment_crop(face_crop, np.random.default_rng(0), off), face_crop)


def test_augment_flip_only_mirrors(face_crop):
    flip = AugmentConfig(flip_p=1, jpeg_p=0, color_p=0, blur_p=0)
    np.testing.assert_array_equal(augment_crop(face_crop, np.random.default_rng(0), flip), face_crop[:, ::-1])


def test_jpeg_recompress_loses_detail_but_keeps_the_picture(face_crop):
    low = jpeg_recompress(face_crop, 20)
    assert low.shape == face_crop.shape and not np.array_equal(low, face_crop)
    assert np.abs(low.astype(int) - face_crop.astype(int)).mean() < 12


def test_brightness_contrast_moves_the_mean_and_spread(face_crop):
    brighter = adjust_brightness_contrast(face_crop, 1.0, 20.0)
    flatter = adjust_brightness_contrast(face_crop, 0.5, 0.0)
    assert brighter.mean() > face_crop.mean() + 10
    assert flatter.std() < 0.6 * face_crop.std()
