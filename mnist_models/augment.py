"""Random affine augmentation (rotation, zoom, shift) as one vectorised warp per batch.

Each image gets its own transform; the whole batch is resampled by a single
:func:`scipy.ndimage.map_coordinates` call (bilinear, zero padding) instead of one call per
image. Only training batches are ever passed here.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mnist_models.config import AugmentationConfig


def random_affine_matrices(
    n: int, size: int, config: AugmentationConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Draws per-image inverse transforms mapping output pixel coords to input coords.

    Returns:
        ``(A, t)`` with ``A`` of shape (n, 2, 2) and ``t`` of shape (n, 2) such that the
        output pixel at ``p`` (row, col) samples the input at ``A @ p + t``.
    """
    angle = np.deg2rad(rng.uniform(-config.rotation, config.rotation, n))
    scale = rng.uniform(1.0 - config.zoom, 1.0 + config.zoom, n)
    shift = rng.uniform(-config.shift, config.shift, (n, 2)) * size
    cos, sin = np.cos(angle) / scale, np.sin(angle) / scale
    # Inverse of "rotate by angle and scale about the centre, then shift".
    matrices = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    centre = np.full(2, (size - 1) / 2.0)
    offsets = centre - np.einsum("nij,nj->ni", matrices, centre + shift)
    return matrices, offsets


def augment_batch(
    images: np.ndarray, config: AugmentationConfig, rng: np.random.Generator
) -> np.ndarray:
    """Warps each image of ``images`` (n, h, w) by its own random affine transform.

    The result has the input's dtype; pixels that come from outside the image are 0.
    """
    n, height = images.shape[:2]
    if n == 0:
        return images.copy()
    matrices, offsets = random_affine_matrices(n, height, config, rng)
    return warp_batch(images, matrices, offsets)


def warp_batch(images: np.ndarray, matrices: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Applies ``output[p] = input[A @ p + t]`` to each image (bilinear, zero padding).

    Equivalent to ``scipy.ndimage.affine_transform(image, A, t, order=1)`` per image, but one
    :func:`scipy.ndimage.map_coordinates` call over the stacked batch, the batch index being
    an exact integer coordinate.
    """
    n, height, width = images.shape
    rows, cols = np.meshgrid(
        np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij"
    )
    grid = np.stack([rows.ravel(), cols.ravel()])  # (2, h*w)
    source = np.einsum("nij,jp->nip", matrices, grid) + offsets[:, :, None]  # (n, 2, h*w)
    index = np.broadcast_to(np.arange(n, dtype=np.float64)[:, None], (n, height * width))
    coords = np.stack([index, source[:, 0], source[:, 1]])  # (3, n, h*w)
    warped = ndimage.map_coordinates(images, coords, order=1, mode="constant", cval=0.0)
    return warped.reshape(n, height, width).astype(images.dtype, copy=False)
