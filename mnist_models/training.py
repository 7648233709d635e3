"""The model-agnostic training loop: epochs, callbacks, divergence checks, final evaluation.

Each model plugs in through a :class:`Trainer` (one epoch of training, scoring a set); this
module owns everything around it, so every model reports the same events and results.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mnist_models.callbacks import Callback, CallbackList, EpochResult, StopTraining
from mnist_models.config import TrainConfig
from mnist_models.data import Splits, load_mnist, make_splits
from mnist_models.errors import TrainingDiverged
from mnist_models.metrics import Evaluation, evaluate_scores

# end_epoch(epoch, train_loss, train_accuracy, val_loss, val_accuracy, learning_rate) -> stop?
EpochEnd = Callable[[int, float, float, float, float, float], bool]


class Trainer(abc.ABC):
    """One model's training steps; built from a frozen config, never from a sweep trial."""

    def __init__(self, config: TrainConfig, splits: Splits) -> None:
        self.config = config
        self.splits = splits

    def train_epoch(self) -> tuple[float, float]:
        """Runs one pass over the training set; returns (mean loss, accuracy) seen in it.

        Used by the default :meth:`fit`; a trainer that overrides ``fit`` need not define it.
        """
        raise NotImplementedError(f"{type(self).__name__} trains through its own fit()")

    @abc.abstractmethod
    def score(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        """Returns (mean loss, per-class scores of shape (n, 10)) in inference mode."""

    @property
    @abc.abstractmethod
    def model(self) -> Any:
        """The trained model object."""

    @property
    def learning_rate(self) -> float:
        return self.config.lr

    def validate(self) -> tuple[float, float]:
        """(loss, accuracy) on the validation split; NaN when there is none."""
        splits = self.splits
        if len(splits.y_val) == 0:
            return float("nan"), float("nan")
        loss, scores = self.score(splits.x_val, splits.y_val)
        return loss, float(np.mean(scores.argmax(axis=1) == splits.y_val))

    def fit(self, epochs: int, end_epoch: EpochEnd) -> None:
        """Trains up to ``epochs``, calling ``end_epoch`` after each; stops when it says so.

        Override this (not the loop in :func:`train`) when a framework runs its own epoch loop,
        as Keras's ``fit`` does.
        """
        for epoch in range(1, epochs + 1):
            learning_rate = self.learning_rate
            # Overflow is reported as divergence by ``end_epoch``, not as numpy warnings.
            with np.errstate(over="ignore", invalid="ignore"):
                train_loss, train_accuracy = self.train_epoch()
            val_loss, val_accuracy = self.validate()
            if end_epoch(epoch, train_loss, train_accuracy, val_loss, val_accuracy, learning_rate):
                return


@dataclass
class TrainResult:
    """Everything a finished (or early-stopped) training run produced."""

    config: TrainConfig
    splits: Splits
    history: list[EpochResult]
    test: Evaluation
    model: Any
    seconds: float
    stop_reason: str | None = None

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason is not None

    @property
    def epochs_trained(self) -> int:
        return len(self.history)

    @property
    def val_accuracy(self) -> float:
        """Validation accuracy after the last epoch trained (the sweep objective)."""
        return self.history[-1].val_accuracy if self.history else float("nan")


def make_trainer(config: TrainConfig, splits: Splits) -> Trainer:
    """Builds the :class:`Trainer` for ``config.model``."""
    if config.model == "mlp":
        from mnist_models.mlp.trainer import MLPTrainer

        return MLPTrainer(config, splits)
    if config.model == "cnn":
        from mnist_models.cnn.trainer import CNNTrainer  # imports Keras only when needed

        return CNNTrainer(config, splits)
    raise ValueError(f"no trainer for model {config.model!r}")  # config validation prevents this


def load_splits(config: TrainConfig, data_dir: str | Path | None = None) -> Splits:
    """Loads MNIST as ``config.data`` says and splits it with ``config.seed``."""
    data = load_mnist(data_dir, dataset=config.data.dataset)
    return make_splits(data, config.data, config.seed, dtype=config.dtype)


def train(
    config: TrainConfig,
    splits: Splits | None = None,
    callbacks: Iterable[Callback] = (),
    data_dir: str | Path | None = None,
) -> TrainResult:
    """Trains ``config`` and evaluates it on the test set.

    Args:
        config: The frozen configuration.
        splits: Data to use; loaded from ``data_dir`` (or the usual places) when omitted.
        callbacks: Subscribers to the per-epoch events; one may raise :class:`StopTraining`.
        data_dir: Where MNIST lives when ``splits`` is not given.

    Raises:
        TrainingDiverged: When the training loss becomes NaN or infinite.
    """
    if splits is None:
        splits = load_splits(config, data_dir)
    hooks = CallbackList(callbacks)
    started = time.perf_counter()
    trainer = make_trainer(config, splits)
    hooks.on_train_begin(config)
    history: list[EpochResult] = []
    stop_reason: str | None = None
    last = time.perf_counter()

    def end_epoch(
        epoch: int, loss: float, accuracy: float, val_loss: float, val_accuracy: float, lr: float
    ) -> bool:
        nonlocal last, stop_reason
        if not math.isfinite(loss):
            raise TrainingDiverged(epoch, loss)
        now = time.perf_counter()
        event = EpochResult(epoch, loss, accuracy, val_loss, val_accuracy, lr, now - last)
        history.append(event)
        try:
            hooks.on_epoch_end(event)
        except StopTraining as stop:
            stop_reason = stop.reason
        last = time.perf_counter()  # callbacks' own time (logging) is not the epoch's
        return stop_reason is not None

    trainer.fit(config.epochs, end_epoch)
    test_loss, test_scores = trainer.score(splits.x_test, splits.y_test)
    result = TrainResult(
        config=config,
        splits=splits,
        history=history,
        test=evaluate_scores(splits.y_test, test_scores, test_loss),
        model=trainer.model,
        seconds=time.perf_counter() - started,
        stop_reason=stop_reason,
    )
    hooks.on_train_end(result)
    return result
