"""Learning-rate schedules of the numpy MLP: the rate each epoch trains at.

Epochs count from 1. The trainer asks :meth:`LRSchedule.rate` for the coming epoch's rate
before the epoch and tells the schedule each finished epoch's validation accuracy through
:meth:`LRSchedule.update` (only :class:`PlateauLR` listens). Every schedule starts at ``lr``
and never goes below ``min_lr``; :func:`build_schedule` picks one from ``config.mlp``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

from mnist_models.choices import LR_SCHEDULES
from mnist_models.config import TrainConfig
from mnist_models.fields import spelled_out

__all__ = ["ConstantLR", "CosineLR", "LRSchedule", "PlateauLR", "StepLR", "build_schedule"]


def _check_factor(factor: float) -> float:
    if not 0.0 < factor < 1.0:
        raise ValueError(f"{factor=} must be in (0, 1)")
    return float(factor)


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}={value!r} must be an integer >= 1")
    return value


class LRSchedule(ABC):
    """The learning rate of each epoch, from ``lr`` and never below ``min_lr``.

    Args:
        lr: The initial learning rate, > 0.
        min_lr: The floor, in [0, lr].

    Raises:
        ValueError: An argument is out of range.
    """

    def __init__(self, lr: float, min_lr: float = 0.0) -> None:
        if not lr > 0:
            raise ValueError(f"{lr=} must be > 0")
        if not 0.0 <= min_lr <= lr:
            raise ValueError(f"{min_lr=} must be in [0, lr={lr}]")
        self.lr = float(lr)
        self.min_lr = float(min_lr)

    def rate(self, epoch: int) -> float:
        """The learning rate epoch ``epoch`` (counted from 1) trains at.

        Raises:
            ValueError: ``epoch`` < 1.
        """
        _check_count("epoch", epoch)
        return max(self._rate(epoch), self.min_lr)

    @abstractmethod
    def _rate(self, epoch: int) -> float:
        """The rate before the ``min_lr`` floor; ``epoch`` >= 1."""

    def update(self, epoch: int, val_accuracy: float) -> None:
        """Takes note of a finished epoch's validation accuracy (NaN: no validation set).

        Schedules that depend only on the epoch number ignore it.
        """
        return

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr}, min_lr={self.min_lr})"


class ConstantLR(LRSchedule):
    """``lr`` at every epoch."""

    def _rate(self, epoch: int) -> float:
        return self.lr


class StepLR(LRSchedule):
    """``lr * factor ** ((epoch - 1) // step_epochs)``: cut by ``factor`` every
    ``step_epochs`` epochs.

    Args:
        lr: The initial learning rate, > 0.
        step_epochs: Epochs between two cuts, >= 1.
        factor: The factor of each cut, in (0, 1).
        min_lr: The floor, in [0, lr].
    """

    def __init__(self, lr: float, step_epochs: int, factor: float, min_lr: float = 0.0) -> None:
        super().__init__(lr, min_lr)
        self.step_epochs = _check_count("step_epochs", step_epochs)
        self.factor = _check_factor(factor)

    def _rate(self, epoch: int) -> float:
        return self.lr * self.factor ** ((epoch - 1) // self.step_epochs)

    def __repr__(self) -> str:
        return (
            f"StepLR(lr={self.lr}, step_epochs={self.step_epochs}, factor={self.factor}, "
            f"min_lr={self.min_lr})"
        )


class CosineLR(LRSchedule):
    """Half a cosine from ``lr`` (epoch 1) towards ``min_lr`` over ``epochs`` epochs.

    ``min_lr + (lr - min_lr) * (1 + cos(pi * (epoch - 1) / epochs)) / 2``; the last epoch
    trains just above ``min_lr``, and epochs past ``epochs`` stay at ``min_lr``.

    Args:
        lr: The initial learning rate, > 0.
        epochs: The length of the run, >= 1.
        min_lr: The floor, in [0, lr].
    """

    def __init__(self, lr: float, epochs: int, min_lr: float = 0.0) -> None:
        super().__init__(lr, min_lr)
        self.epochs = _check_count("epochs", epochs)

    def _rate(self, epoch: int) -> float:
        progress = min((epoch - 1) / self.epochs, 1.0)
        return self.min_lr + (self.lr - self.min_lr) * (1.0 + math.cos(math.pi * progress)) / 2

    def __repr__(self) -> str:
        return f"CosineLR(lr={self.lr}, epochs={self.epochs}, min_lr={self.min_lr})"


class PlateauLR(LRSchedule):
    """Cuts the rate by ``factor`` when validation accuracy stops improving.

    The rule of Keras's ``ReduceLROnPlateau(monitor="val_accuracy", mode="max",
    factor=factor, patience=patience, min_lr=min_lr, min_delta=0, cooldown=0)``: the first
    accuracy is the best so far; an accuracy above the best replaces it and resets the count
    of epochs without improvement; any other adds one to it, and when the count reaches
    ``patience`` while the rate is above ``min_lr``, the rate becomes
    ``max(rate * factor, min_lr)`` from the next epoch on and the count restarts. (Keras keeps
    the rate in a float32 variable; here it stays a python float.)

    Unlike Keras, a NaN accuracy (a run without validation set) is not counted at all, so the
    rate then never changes.

    Args:
        lr: The initial learning rate, > 0.
        factor: The factor of each cut, in (0, 1).
        patience: Epochs without improvement before a cut, >= 1.
        min_lr: The floor, in [0, lr].
    """

    def __init__(self, lr: float, factor: float, patience: int, min_lr: float = 0.0) -> None:
        super().__init__(lr, min_lr)
        self.factor = _check_factor(factor)
        self.patience = _check_count("patience", patience)
        self.current = self.lr
        self.best: float | None = None
        self.wait = 0

    def _rate(self, epoch: int) -> float:
        return self.current

    def update(self, epoch: int, val_accuracy: float) -> None:
        if math.isnan(val_accuracy):
            return
        if self.best is None or val_accuracy > self.best:
            self.best = val_accuracy
            self.wait = 0
            return
        self.wait += 1
        if self.wait >= self.patience and self.current > self.min_lr:
            self.current = max(self.current * self.factor, self.min_lr)
            self.wait = 0

    def __repr__(self) -> str:
        return (
            f"PlateauLR(lr={self.lr}, factor={self.factor}, patience={self.patience}, "
            f"min_lr={self.min_lr})"
        )


def build_schedule(config: TrainConfig) -> LRSchedule:
    """The schedule ``config.mlp.lr_schedule`` names, from ``config.lr`` over
    ``config.epochs``, with the ``mlp.lr_*`` and ``mlp.min_lr`` settings.

    Raises:
        ValueError: ``mlp.min_lr`` is above ``lr``, or the schedule is unknown.
    """
    mlp, lr = config.mlp, config.lr
    if mlp.lr_schedule == "constant":
        return ConstantLR(lr, mlp.min_lr)
    if mlp.lr_schedule == "step":
        return StepLR(lr, mlp.lr_step_epochs, mlp.lr_factor, mlp.min_lr)
    if mlp.lr_schedule == "cosine":
        return CosineLR(lr, config.epochs, mlp.min_lr)
    if mlp.lr_schedule == "plateau":
        return PlateauLR(lr, mlp.lr_factor, mlp.lr_patience, mlp.min_lr)
    raise ValueError(f"{mlp.lr_schedule=} must be {spelled_out(LR_SCHEDULES)}")
