"""The fused affine warp matches scipy's per-image affine_transform and stays in range."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mnist_models.config import AugmentationConfig
from mnist_models.mlp.augment import augment_batch, random_affine_matrices, warp_batch


def test_batch_warp_equals_per_image_scipy_affine_transform() -> None:
    rng = np.random.default_rng(3)
    images = rng.random((6, 28, 28))
    config = AugmentationConfig(rotation=30, zoom=0.2, shift=0.2)
    matrices, offsets = random_affine_matrices(6, 28, config, np.random.default_rng(1))
    warped = warp_batch(images, matrices, offsets)
    for i in range(6):
        expected = ndimage.affine_transform(
            images[i], matrices[i], offsets[i], order=1, mode="grid-constant", cval=0.0
        )
        np.testing.assert_allclose(warped[i], expected, atol=1e-12)


def test_float32_batches_stay_close_to_the_float64_reference() -> None:
    images = np.random.default_rng(4).random((3, 28, 28))
    matrices, offsets = random_affine_matrices(
        3, 28, AugmentationConfig(), np.random.default_rng(2)
    )
    single = warp_batch(images.astype(np.float32), matrices, offsets)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, warp_batch(images, matrices, offsets), atol=1e-5)


def test_zero_ranges_are_the_identity() -> None:
    images = np.random.default_rng(0).random((4, 28, 28)).astype(np.float32)
    none = AugmentationConfig(rotation=0, zoom=0, shift=0)
    out = augment_batch(images, none, np.random.default_rng(0))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, images, atol=1e-6)


def test_pure_shift_moves_a_dot() -> None:
    image = np.zeros((1, 28, 28))
    image[0, 10, 10] = 1.0
    matrices = np.eye(2)[None]
    offsets = np.array([[-3.0, 2.0]])  # output p samples input p + t: the dot moves by -t
    out = warp_batch(image, matrices, offsets)
    assert out[0, 13, 8] == 1.0 and out.sum() == 1.0


def test_rotation_about_the_centre_preserves_a_centred_disc() -> None:
    yy, xx = np.mgrid[:28, :28]
    disc = (((yy - 13.5) ** 2 + (xx - 13.5) ** 2) < 36).astype(float)[None]
    config = AugmentationConfig(rotation=45, zoom=0, shift=0)
    out = augment_batch(disc, config, np.random.default_rng(5))
    assert abs(out.sum() - disc.sum()) / disc.sum() < 0.02


def test_seeded_and_per_image_different() -> None:
    images = np.random.default_rng(0).random((8, 28, 28)).astype(np.float32)
    config = AugmentationConfig()
    a = augment_batch(images, config, np.random.default_rng(7))
    b = augment_batch(images, config, np.random.default_rng(7))
    c = augment_batch(images, config, np.random.default_rng(8))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    assert a.min() >= 0.0 and a.max() <= 1.0 + 1e-6


def test_zoom_and_shift_stay_within_their_ranges() -> None:
    config = AugmentationConfig(rotation=10, zoom=0.1, shift=0.1)
    matrices, offsets = random_affine_matrices(2000, 28, config, np.random.default_rng(0))
    scale = 1 / np.sqrt(np.abs(np.linalg.det(matrices)))
    centre = np.full(2, 13.5)
    shift = np.einsum("nij,nj->ni", np.linalg.inv(matrices), centre - offsets) - centre
    assert np.abs(shift).max() <= 2.8 + 1e-9 and np.abs(shift).max() > 2.5
    angle = np.degrees(np.arctan2(matrices[:, 1, 0], matrices[:, 0, 0]))
    assert scale.min() >= 0.9 - 1e-9 and scale.max() <= 1.1 + 1e-9
    assert np.abs(angle).max() <= 10 + 1e-9
    assert scale.std() > 0.03 and np.abs(angle).max() > 9
