"""Optimizers: update :class:`Parameter` values in place from their ``grad``.

State arrays (velocities, moments, one scratch buffer) have each parameter's dtype and are
updated with in-place ufuncs, so a step allocates nothing and never upcasts float32.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np

from mnist_models.mlp.layers import Parameter


class Optimizer(ABC):
    """Updates a fixed list of parameters from their gradients.

    Args:
        params: The parameters to update (for example ``model.parameters()``).
    """

    def __init__(self, params: list[Parameter]) -> None:
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{params=} must not be empty")
        self._scratch = [np.empty_like(p.value) for p in self.params]

    _lr: float

    @property
    def loss_scale(self) -> float:
        """What the trainer multiplies the loss gradient by before the backward pass (see
        :class:`SGD`'s ``fold_lr``); 1 for optimizers that read true gradients."""
        return 1.0

    @property
    def lr(self) -> float:
        """The learning rate of the next :meth:`step`; a schedule may set it between steps.

        Setting it keeps the optimizer's state (velocities, moments, step count) and takes
        effect from the next step on.

        Raises:
            ValueError: On setting a rate that is not > 0.
        """
        return self._lr

    @lr.setter
    def lr(self, lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"{lr=} must be > 0")
        self._lr = float(lr)

    def state(self) -> list[np.ndarray]:
        """The arrays the optimizer carries from step to step (velocities, moments)."""
        return []

    def flush_subnormals(self) -> None:
        """Sets the parameters' and the optimizer state's values on their way to subnormal
        to 0: those below ``2**24`` times the smallest normal float (2e-31 in float32).

        numpy cannot switch on the CPU's flush-to-zero mode, and arithmetic on subnormal
        floats (below 1.2e-38 in float32) is tens of times slower. With L2 weight decay the
        first layer's weights of pixels that are always 0 (the corners) have no data gradient,
        so Adam drives them and their moments towards 0 and through the subnormals: on the
        record MLP an epoch slowed from 10 s to 74 s over 20 epochs. Flushing only the
        subnormals left them coming back between two flushes; flushing a little above them
        catches the values while they decay (Adam's first moment takes over 100 steps from
        2e-31 down to the subnormals). It changes a value by less than 2e-31; a pass over
        every array costs about 10 ms on 784-800-800-10.
        """
        for array in [*(p.value for p in self.params), *self.state()]:
            if array.dtype.kind == "f":
                floor = np.finfo(array.dtype).tiny * 2.0**24
                np.copyto(array, 0, where=np.abs(array) < floor)

    @abstractmethod
    def step(self) -> None:
        """Applies one update using each parameter's current ``grad``."""


class SGD(Optimizer):
    """Stochastic gradient descent with optional classic momentum.

    ``v = momentum * v - lr * grad; value += v`` (``momentum=0`` is plain SGD). A new
    :attr:`lr` scales only the gradients to come, not the velocity already gathered (as
    Keras's SGD does).

    Args:
        params: The parameters to update.
        lr: Learning rate, > 0.
        momentum: Momentum coefficient, in [0, 1).
        fold_lr: Plain SGD only: ``-lr`` becomes :attr:`loss_scale`, so the trainer scales the
            (batch, classes) loss gradient by it and every ``grad`` arrives as the step itself;
            the update is then one pass, ``value += grad``, instead of a scaling pass and an
            add (on a 784x256 weight after its gradient product, the update was about a fifth
            of a float32 step). It rounds differently from ``value += grad * -lr``, so runs
            that must match old code bit for bit (float64, faithful mode) leave it off.
    """

    def __init__(
        self, params: list[Parameter], lr: float, momentum: float = 0.0, fold_lr: bool = False
    ) -> None:
        if not lr > 0:
            raise ValueError(f"{lr=} must be > 0")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"{momentum=} must be in [0, 1)")
        if fold_lr and momentum:
            raise ValueError(f"{fold_lr=} needs momentum=0, got {momentum=}")
        super().__init__(params)
        self.momentum = float(momentum)
        self.fold_lr = fold_lr
        self.lr = lr
        self.velocities = [np.zeros_like(p.value) for p in self.params] if momentum else []

    @property
    def loss_scale(self) -> float:
        """``-lr`` when folded (so it follows every new :attr:`lr`), else 1."""
        return -self._lr if self.fold_lr else 1.0

    def state(self) -> list[np.ndarray]:
        return list(self.velocities)

    def step(self) -> None:
        if self.fold_lr:
            for p in self.params:
                p.value += p.grad
            return
        for i, p in enumerate(self.params):
            step = np.multiply(p.grad, -self.lr, out=self._scratch[i])
            if self.momentum:
                v = self.velocities[i]
                v *= self.momentum
                v += step
                step = v
            p.value += step

    def __repr__(self) -> str:
        fold = ", fold_lr=True" if self.fold_lr else ""
        return f"SGD(lr={self.lr}, momentum={self.momentum}{fold})"


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction, as ``torch.optim.Adam`` without decay.

    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g²``;
    ``value -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.

    To save passes over the arrays, the state kept is ``m / (1 - b1)`` and ``v / (1 - b2)``
    (updated as ``m *= b1; m += g``) with the constant factors folded into the step's scalars.

    Args:
        params: The parameters to update.
        lr: Learning rate, > 0.
        beta1: Decay of the first moment, in [0, 1).
        beta2: Decay of the second moment, in [0, 1).
        eps: Added to the denominator, > 0.
    """

    def __init__(
        self,
        params: list[Parameter],
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        if not lr > 0:
            raise ValueError(f"{lr=} must be > 0")
        if not 0.0 <= beta1 < 1.0:
            raise ValueError(f"{beta1=} must be in [0, 1)")
        if not 0.0 <= beta2 < 1.0:
            raise ValueError(f"{beta2=} must be in [0, 1)")
        if not eps > 0:
            raise ValueError(f"{eps=} must be > 0")
        super().__init__(params)
        self.lr, self.eps = lr, float(eps)
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.t = 0
        self.m = [np.zeros_like(p.value) for p in self.params]  # m / (1 - beta1)
        self.v = [np.zeros_like(p.value) for p in self.params]  # v / (1 - beta2)

    def state(self) -> list[np.ndarray]:
        return [*self.m, *self.v]

    def step(self) -> None:
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # sqrt(v / c2) = sqrt(v_kept) * root, so the update is
        # lr (1 - b1) / c1 / root * m_kept / (sqrt(v_kept) + eps / root).
        root = math.sqrt((1.0 - b2) / (1.0 - b2**self.t))
        step_size = self.lr * (1.0 - b1) / (1.0 - b1**self.t) / root
        eps = self.eps / root
        for p, m, v, buf in zip(self.params, self.m, self.v, self._scratch, strict=True):
            g = p.grad
            m *= b1
            m += g
            v *= b2
            v += np.multiply(g, g, out=buf)
            np.sqrt(v, out=buf)
            buf += eps
            np.divide(m, buf, out=buf)
            buf *= step_size
            p.value -= buf

    def __repr__(self) -> str:
        return f"Adam(lr={self.lr}, beta1={self.beta1}, beta2={self.beta2}, eps={self.eps})"
