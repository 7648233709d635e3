"""The fused warps match scipy (affine_transform, gaussian_filter, map_coordinates), stay in
range, and are seeded per image; ``affine`` draws what it drew before ``elastic`` existed."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from mnist_models.config import AugmentationConfig
from mnist_models.mlp.augment import (
    augment_batch,
    elastic_displacements,
    random_affine_matrices,
    warp_batch,
)
from mnist_models.smoothing import gaussian_matrix


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
    out = augment_batch(images, "affine", none, np.random.default_rng(0))
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
    out = augment_batch(disc, "affine", config, np.random.default_rng(5))
    assert abs(out.sum() - disc.sum()) / disc.sum() < 0.02


def test_seeded_and_per_image_different() -> None:
    images = np.random.default_rng(0).random((8, 28, 28)).astype(np.float32)
    config = AugmentationConfig()
    a = augment_batch(images, "affine", config, np.random.default_rng(7))
    b = augment_batch(images, "affine", config, np.random.default_rng(7))
    c = augment_batch(images, "affine", config, np.random.default_rng(8))
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


# -- elastic distortion (Simard et al. 2003) -------------------------------------------------


@pytest.mark.parametrize("sigma", [0.7, 4.0, 6.0])
def test_gaussian_matrix_products_equal_scipy_gaussian_filter(sigma: float) -> None:
    noise = np.random.default_rng(0).uniform(-1, 1, (3, 2, 28, 28))
    smooth = gaussian_matrix(28, sigma)
    expected = ndimage.gaussian_filter(noise, sigma=(0, 0, sigma, sigma), mode="constant")
    np.testing.assert_allclose(smooth @ noise @ smooth.T, expected, atol=1e-12)


def test_elastic_fields_are_alpha_times_the_smoothed_uniform_noise() -> None:
    config = AugmentationConfig(alpha=34.0, sigma=4.0)
    fields = elastic_displacements(5, 28, config, np.random.default_rng(9), np.float64)
    noise = np.random.default_rng(9).random((5, 2, 28, 28)) * 2.0 - 1.0
    expected = 34.0 * ndimage.gaussian_filter(noise, sigma=(0, 0, 4, 4), mode="constant")
    np.testing.assert_allclose(fields, expected, atol=1e-10)
    assert fields.shape == (5, 2, 28, 28) and fields.dtype == np.float64
    # Independent per image and axis, and smooth: neighbours move together.
    assert not np.allclose(fields[0, 0], fields[1, 0]) and not np.allclose(
        fields[0, 0], fields[0, 1]
    )
    centre = fields[:, :, 8:20, 8:20]
    neighbours = np.corrcoef(centre[..., :-1].ravel(), centre[..., 1:].ravel())[0, 1]
    assert neighbours > 0.9


def test_displaced_warp_equals_scipy_map_coordinates() -> None:
    rng = np.random.default_rng(1)
    images = rng.random((4, 28, 28))
    fields = elastic_displacements(
        4, 28, AugmentationConfig(alpha=40.0, sigma=3.0), rng, np.float64
    )
    matrices, offsets = random_affine_matrices(4, 28, AugmentationConfig(), rng)
    warped = warp_batch(images, matrices, offsets, fields)
    rows, cols = np.mgrid[:28, :28].astype(float)
    for i in range(4):
        points = np.einsum("ij,jhw->ihw", matrices[i], np.stack([rows, cols]))
        points += offsets[i][:, None, None] + fields[i]
        expected = ndimage.map_coordinates(images[i], points, order=1, mode="grid-constant")
        np.testing.assert_allclose(warped[i], expected, atol=1e-12)


def test_elastic_alone_keeps_the_image_in_place_and_alpha_zero_is_the_identity() -> None:
    images = np.random.default_rng(2).random((3, 28, 28)).astype(np.float32)
    still = AugmentationConfig(alpha=0.0)
    np.testing.assert_allclose(
        augment_batch(images, "elastic", still, np.random.default_rng(0)), images, atol=1e-6
    )
    moved = augment_batch(images, "elastic", AugmentationConfig(), np.random.default_rng(0))
    assert moved.dtype == np.float32 and not np.allclose(moved, images, atol=1e-3)
    assert moved.min() >= 0.0 and moved.max() <= 1.0 + 1e-6


def test_affine_draws_the_same_with_or_without_elastic_after_it() -> None:
    """``affine+elastic`` draws the affine transforms first, from the same stream: so the
    affine-only runs logged before the elastic option reproduce, and with alpha = 0 the
    combined warp is the affine one."""
    images = np.random.default_rng(3).random((6, 28, 28))
    config = AugmentationConfig(alpha=0.0)
    affine = augment_batch(images, "affine", config, np.random.default_rng(4))
    both = augment_batch(images, "affine+elastic", config, np.random.default_rng(4))
    np.testing.assert_allclose(both, affine, atol=1e-12)
    matrices, offsets = random_affine_matrices(6, 28, config, np.random.default_rng(4))
    np.testing.assert_array_equal(affine, warp_batch(images, matrices, offsets))


def test_augment_none_is_refused() -> None:
    with pytest.raises(ValueError, match="augment='none'"):
        augment_batch(np.zeros((1, 28, 28)), "none", AugmentationConfig(), np.random.default_rng())
