"""Gaussian smoothing as a matrix, shared by the MLP's and the CNN's elastic distortions."""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["gaussian_matrix"]


@functools.lru_cache(maxsize=8)
def gaussian_matrix(size: int, sigma: float, dtype: str = "float64") -> np.ndarray:
    """The (size, size) matrix ``G`` with ``G @ x == ndimage.gaussian_filter1d(x, sigma,
    axis=0, mode="constant")``: smoothing a field by a Gaussian is then two small matrix
    products (``G @ field @ G.T``), which BLAS runs over a whole batch far faster than
    ``ndimage.gaussian_filter`` convolves it (sigma = 4 has a 33-tap kernel on a 28-pixel side).
    """
    from scipy import ndimage  # a fraction of a second to import: only when a run distorts

    matrix = ndimage.gaussian_filter1d(np.eye(size), sigma, axis=0, mode="constant")
    matrix = matrix.astype(dtype)
    matrix.flags.writeable = False  # shared by the cache
    return matrix
