"""Numerical gradient checks shared by the MLP's layer tests and its weight-decay tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

H = 1e-6  # central-difference step (float64)
TOL = 1e-6  # relative error allowed between analytic and numerical gradients


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    scale = float(np.linalg.norm(a) + np.linalg.norm(b))
    return float(np.linalg.norm(a - b)) / max(scale, 1e-300)


def numerical_grad(f: Callable[[], float], array: np.ndarray) -> np.ndarray:
    """d f / d array by central differences, perturbing ``array`` in place."""
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + H
        plus = f()
        array[index] = saved - H
        minus = f()
        array[index] = saved
        grad[index] = (plus - minus) / (2 * H)
    return grad
