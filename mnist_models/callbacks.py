"""The per-epoch callback protocol every training loop reports through.

Tracking (MLflow), pruning (Optuna) and progress display all subscribe here, so training code
knows nothing of any of them. A callback asks training to stop by raising
:class:`StopTraining`; the loop then ends cleanly and the result says who stopped it and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mnist_models.config import TrainConfig
    from mnist_models.training import TrainResult


@dataclass(frozen=True)
class EpochResult:
    """What one finished epoch reports (epochs count from 1)."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    learning_rate: float
    seconds: float

    def metrics(self) -> dict[str, float]:
        """The per-epoch metrics by name (NaN validation figures when there is no val set)."""
        return {
            "train_loss": self.train_loss,
            "train_accuracy": self.train_accuracy,
            "val_loss": self.val_loss,
            "val_accuracy": self.val_accuracy,
            "learning_rate": self.learning_rate,
            "epoch_seconds": self.seconds,
        }


class StopTraining(Exception):
    """Raised by a callback to end training after the current epoch."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Callback:
    """Base class with no-op hooks; override the ones you need."""

    def on_train_begin(self, config: TrainConfig) -> None:
        """Called once before the first epoch."""

    def on_epoch_end(self, result: EpochResult) -> None:
        """Called after every epoch; may raise :class:`StopTraining`."""

    def on_train_end(self, result: TrainResult) -> None:
        """Called once with the final result, also when training was stopped early."""


class CallbackList(Callback):
    """Fans each hook out to several callbacks, in order."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def on_train_begin(self, config: TrainConfig) -> None:
        for callback in self.callbacks:
            callback.on_train_begin(config)

    def on_epoch_end(self, result: EpochResult) -> None:
        # Every callback sees the epoch (so the tracker logs it) before a stop takes effect.
        stop: StopTraining | None = None
        for callback in self.callbacks:
            try:
                callback.on_epoch_end(result)
            except StopTraining as exc:
                stop = stop or exc
        if stop is not None:
            raise stop

    def on_train_end(self, result: TrainResult) -> None:
        for callback in self.callbacks:
            callback.on_train_end(result)
