"""The model-agnostic training loop: epochs, callbacks, divergence checks, final evaluation.

Each model plugs in through a :class:`Trainer` (one epoch of training, scoring a set); this
module owns everything around it, so every model reports the same events and results.
"""

from __future__ import annotations

import abc
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mnist_models.callbacks import Callback, CallbackList, EpochResult, StopTraining
from mnist_models.config import TrainConfig
from mnist_models.data import Splits, load_mnist, make_splits
from mnist_models.errors import TrainingDiverged
from mnist_models.metrics import Evaluation, evaluate_scores


class Trainer(abc.ABC):
    """One model's training steps; built from a frozen config, never from a sweep trial."""

    def __init__(self, config: TrainConfig, splits: Splits) -> None:
        self.config = config
        self.splits = splits

    @abc.abstractmethod
    def train_epoch(self) -> tuple[float, float]:
        """Runs one pass over the training set; returns (mean loss, accuracy) seen in it."""

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
    extra: dict[str, Any] = field(default_factory=dict)

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
    raise ValueError(f"no trainer for model {config.model!r}")  # config validation prevents this


def load_splits(config: TrainConfig, data_dir: str | Path | None = None) -> Splits:
    """Loads MNIST as ``config.data`` says and splits it with ``config.seed``."""
    data = load_mnist(data_dir, dataset=config.data.dataset)
    return make_splits(data, config.data, config.seed, dtype=config.mlp.dtype)


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
    for epoch in range(1, config.epochs + 1):
        epoch_start = time.perf_counter()
        learning_rate = trainer.learning_rate
        # Overflow is reported as divergence below, not as numpy warnings mid-epoch.
        with np.errstate(over="ignore", invalid="ignore"):
            train_loss, train_accuracy = trainer.train_epoch()
        if not math.isfinite(train_loss):
            raise TrainingDiverged(epoch, train_loss)
        val_loss, val_accuracy = _validate(trainer, splits)
        event = EpochResult(
            epoch=epoch,
            train_loss=train_loss,
            train_accuracy=train_accuracy,
            val_loss=val_loss,
            val_accuracy=val_accuracy,
            learning_rate=learning_rate,
            seconds=time.perf_counter() - epoch_start,
        )
        history.append(event)
        try:
            hooks.on_epoch_end(event)
        except StopTraining as stop:
            stop_reason = stop.reason
            break
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


def _validate(trainer: Trainer, splits: Splits) -> tuple[float, float]:
    if len(splits.y_val) == 0:
        return float("nan"), float("nan")
    loss, scores = trainer.score(splits.x_val, splits.y_val)
    return loss, float(np.mean(scores.argmax(axis=1) == splits.y_val))
