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
from typing import TypeAlias

import numpy as np

from mnist_models.choices import (
    DROPOUT_BACKWARDS,
    DTYPES,
    INITS,
    RELU_GATES,
    DropoutBackward,
    Dtype,
    Init,
    ReluGate,
)

# A modern Generator, or numpy's legacy RandomState (the stream ``np.random.seed`` drives),
# which faithful mode uses to re-draw the exact weights and masks of old numpy code.
RNG: TypeAlias = np.random.Generator | np.random.RandomState


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


def _check_dtype(dtype: Dtype) -> np.dtype:
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
        rng: Draws the initial weights. A legacy ``RandomState`` draws them in float64 as
            old numpy code did (``randn(in, out) * sqrt(2 / in)`` or
            ``2 * init_scale * random_sample((in, out)) - init_scale``), then casts them.
        dtype: ``float32`` or ``float64``; inputs of another dtype are cast to it.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        *,
        bias: bool = True,
        init: Init = "he",
        init_scale: float = 0.1,
        rng: RNG,
        dtype: Dtype = "float32",
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
        if isinstance(rng, np.random.RandomState):  # old numpy code: all in float64
            if init == "he":
                weight = rng.standard_normal(shape) * math.sqrt(2.0 / in_features)
            else:
                weight = 2.0 * init_scale * rng.random_sample(shape) - init_scale
            weight = weight.astype(self.dtype, copy=False)
        elif init == "he":
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
    """``max(x, 0)``; by default the gradient passes where the input was positive.

    Args:
        gate: ``input`` (the gate is ``input > 0``: the true derivative) or ``output``
            (faithful mode: the gate is ``output >= 0``, as code that applies the derivative
            to the activation computes it; it always holds, so the gradient is never gated).
    """

    def __init__(self, gate: ReluGate = "input") -> None:
        if gate not in RELU_GATES:
            raise ValueError(f"{gate=} must be one of {RELU_GATES}")
        self.gate = gate
        self._mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        positive = x > 0
        out = np.multiply(x, positive)
        self._mask = positive if self.gate == "input" else out >= 0
        return out

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        return np.multiply(grad_out, _saved(self._mask, self))

    def __repr__(self) -> str:
        return "ReLU()" if self.gate == "input" else f"ReLU(gate={self.gate!r})"


class Dropout(Layer):
    """Inverted dropout: in training, zeroes each unit with probability ``rate`` and scales the
    survivors by ``1 / (1 - rate)``; in evaluation (and at rate 0) it is the identity.

    Args:
        rate: Probability of dropping a unit, in [0, 1).
        rng: Draws the masks. A legacy ``RandomState`` draws each mask as
            ``randint(2, size=x.shape)`` (1 keeps the unit), the way *Grokking Deep
            Learning* did; that only expresses ``rate`` 0.5.
        backward: ``masked`` (the gradient is masked and scaled like the forward pass) or
            ``unmasked`` (faithful mode: the gradient passes through untouched, as in code
            whose masking of the gradient never took effect).
    """

    def __init__(self, rate: float, rng: RNG, backward: DropoutBackward = "masked") -> None:
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"{rate=} must be in [0, 1)")
        if backward not in DROPOUT_BACKWARDS:
            raise ValueError(f"{backward=} must be one of {DROPOUT_BACKWARDS}")
        if isinstance(rng, np.random.RandomState) and rate not in (0.0, 0.5):
            raise ValueError(f"{rate=} must be 0 or 0.5 with a legacy RandomState")
        self.rate = float(rate)
        self.rng = rng
        self.backward_mode = backward
        self._threshold = np.uint32(min(round(self.rate * 2**32), 2**32 - 1))
        self._mask: np.ndarray | None = None  # scaled keep-mask of the last forward, or None

    def keep_mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """Draws one boolean keep-mask of ``shape`` (True keeps the unit)."""
        return self.keep_masks(1, shape)[0]

    def keep_masks(self, count: int, shape: tuple[int, ...]) -> np.ndarray:
        """Draws ``count`` keep-masks at once, equal to ``count`` calls of :meth:`keep_mask`.

        Returns:
            A boolean array of shape ``(count, *shape)``.
        """
        if isinstance(self.rng, np.random.RandomState):
            # randint(2) takes one 32-bit draw per unit, so a block is the same stream.
            return self.rng.randint(2, size=(count, *shape)).astype(bool)
        # A unit survives when its 32 random bits reach rate * 2**32: raw bits cost about half
        # as much to draw as floats, and the rate is off by at most 2**-32. Each mask takes
        # whole 64-bit words (half of the last one unused when its size is odd).
        size = math.prod(shape)
        words = (size + 1) // 2
        bits = self.rng.bit_generator.random_raw(count * words).view(np.uint32)
        bits = bits.reshape(count, 2 * words)[:, :size]
        return bits.reshape(count, *shape) >= self._threshold

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        keep = self.keep_mask(x.shape)
        self._mask = np.multiply(keep, 1.0 / (1.0 - self.rate), dtype=x.dtype)
        return np.multiply(x, self._mask)

    def backward(self, grad_out: np.ndarray) -> np.ndarray:
        if self._mask is None or self.backward_mode == "unmasked":
            return grad_out
        return np.multiply(grad_out, self._mask)

    def __repr__(self) -> str:
        if self.backward_mode == "masked":
            return f"Dropout({self.rate})"
        return f"Dropout({self.rate}, backward={self.backward_mode!r})"


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
