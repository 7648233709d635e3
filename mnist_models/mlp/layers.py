"""Layers of the numpy MLP: each one's forward and backward pass side by side.

Conventions: inputs are ``(batch, features)`` arrays; ``backward`` takes the gradient of the loss
with respect to the layer's last output and returns the gradient with respect to its last input,
overwriting (never accumulating) the ``grad`` of the layer's parameters on the way. Arrays stay
in the dtype the layer was built with; scalars are python floats so they never upcast float32.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator

import numpy as np

DTYPES = ("float32", "float64")
INITS = ("he", "uniform")


class Parameter:
    """A trainable array and the gradient the last backward pass left in it.

    Attributes:
        value: The array itself, updated in place by optimizers.
        grad: Same shape and dtype as ``value``; overwritten on each backward pass.
    """

    def __init__(self, value: np.ndarray) -> None:
        self.value = value
        self.grad = np.zeros_like(value)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Layer(ABC):
    """A differentiable map from a ``(batch, in)`` array to a ``(batch, out)`` array."""

    @abstractmethod
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Computes the output, remembering what ``backward`` needs."""

    @abstractmethod
    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        """Returns d loss / d input and fills the parameters' ``grad``."""

    def backward_params(self, grad_out: np.ndarray) -> None:
        """Fills the parameters' ``grad`` only; layers may skip the input gradient here."""
        self.backward(grad_out)

    def parameters(self) -> list[Parameter]:
        return []


def _check_dtype(dtype: str) -> np.dtype:
    if dtype not in DTYPES:
        raise ValueError(f"{dtype=} must be one of {DTYPES}")
    return np.dtype(dtype)


def _saved(saved: np.ndarray | None, layer: Layer) -> np.ndarray:
    if saved is None:
        raise RuntimeError(f"{type(layer).__name__}.backward called before forward")
    return saved


class Linear(Layer):
    """Affine map ``y = x @ W + b`` with ``W`` of shape ``(in_features, out_features)``.

    Args:
        in_features: Width of the input.
        out_features: Width of the output.
        bias: Whether to add a bias (initialised to zero).
        init: ``he`` (normal, std ``sqrt(2 / in_features)``) or ``uniform``
            (U(-init_scale, init_scale)).
        init_scale: Half-width of the uniform init.
        rng: Draws the initial weights.
        dtype: ``float32`` or ``float64``; inputs of another dtype are cast to it.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        init: str = "he",
        init_scale: float = 0.1,
        rng: np.random.Generator,
        dtype: str = "float32",
    ) -> None:
        if in_features < 1:
            raise ValueError(f"{in_features=} must be >= 1")
        if out_features < 1:
            raise ValueError(f"{out_features=} must be >= 1")
        if init not in INITS:
            raise ValueError(f"{init=} must be one of {INITS}")
        if not init_scale > 0:
            raise ValueError(f"{init_scale=} must be > 0")
        self.dtype = _check_dtype(dtype)
        shape = (in_features, out_features)
        if init == "he":
            weight = rng.standard_normal(shape, dtype=self.dtype)
            weight *= math.sqrt(2.0 / in_features)
        else:
            weight = rng.random(shape, dtype=self.dtype)
            weight *= 2.0 * init_scale
            weight -= init_scale
        self.weight = Parameter(weight)
        self.bias = Parameter(np.zeros(out_features, dtype=self.dtype)) if bias else None
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        self._x = x
        out = x @ self.weight.value
        if self.bias is not None:
            out += self.bias.value
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        self.backward_params(grad_out)
        return grad_out @ self.weight.value.T

    def backward_params(self, grad_out: np.ndarray) -> None:
        x = _saved(self._x, self)
        np.matmul(x.T, grad_out, out=self.weight.grad)
        if self.bias is not None:
            np.sum(grad_out, axis=0, out=self.bias.grad)

    def parameters(self) -> list[Parameter]:
        return [self.weight] if self.bias is None else [self.weight, self.bias]

    def __repr__(self) -> str:
        n_in, n_out = self.weight.shape
        return f"Linear({n_in}, {n_out}, bias={self.bias is not None}, dtype={self.dtype})"


class ReLU(Layer):
    """``max(x, 0)``; the gradient passes where the input was positive."""

    def __init__(self) -> None:
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._mask = x > 0
        return np.multiply(x, self._mask)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return np.multiply(grad_out, _saved(self._mask, self))

    def __repr__(self) -> str:
        return "ReLU()"


class Dropout(Layer):
    """Inverted dropout: in training, zeroes each unit with probability ``rate`` and scales the
    survivors by ``1 / (1 - rate)``; in evaluation (and at rate 0) it is the identity.

    Args:
        rate: Probability of dropping a unit, in [0, 1).
        rng: Draws the masks.
    """

    def __init__(self, rate: float, rng: np.random.Generator) -> None:
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{rate=} must be in [0, 1)")
        self.rate = float(rate)
        self.rng = rng
        self._threshold = np.uint32(min(round(self.rate * 2**32), 2**32 - 1))
        self._mask: np.ndarray | None = None  # scaled keep-mask of the last forward, or None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        # A unit survives when its 32 random bits reach rate * 2**32: raw bits cost about half
        # as much to draw as floats, and the rate is off by at most 2**-32.
        bits = self.rng.bit_generator.random_raw((x.size + 1) // 2).view(np.uint32)
        keep = bits[: x.size].reshape(x.shape) >= self._threshold
        self._mask = np.multiply(keep, 1.0 / (1.0 - self.rate), dtype=x.dtype)
        return np.multiply(x, self._mask)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._mask is None:
            return grad_out
        return np.multiply(grad_out, self._mask)

    def __repr__(self) -> str:
        return f"Dropout({self.rate})"


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse.

    Args:
        *layers: The layers, first to last.
    """

    def __init__(self, *layers: Layer) -> None:
        for layer in layers:
            if not isinstance(layer, Layer):
                raise ValueError(f"{layer=} is not a Layer")
        self.layers = list(layers)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training)
        return x

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        for layer in reversed(self.layers):
            grad_out = layer.backward(grad_out)
        return grad_out

    def backward_params(self, grad_out: np.ndarray) -> None:
        """Like ``backward`` but lets the first layer skip the (unused) input gradient."""
        if not self.layers:
            return
        for layer in reversed(self.layers[1:]):
            grad_out = layer.backward(grad_out)
        self.layers[0].backward_params(grad_out)

    def parameters(self) -> list[Parameter]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def __repr__(self) -> str:
        inner = "".join(f"\n  {layer!r}," for layer in self.layers)
        return f"Sequential({inner}\n)"
