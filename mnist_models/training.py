"""The model-agnostic training loop: epochs, callbacks, divergence checks, final evaluation.

Each model plugs in through a :class:`~mnist_models.trainers.Trainer` (one epoch of training,
scoring a set), found by name in the registry of :mod:`mnist_models.trainers`; this module
owns everything around it, so every model reports the same events and results, and it imports
no trainer.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnist_models.callbacks import Callback, CallbackList, EpochResult, StopTraining
from mnist_models.config import TrainConfig
from mnist_models.data import Splits, load_mnist, make_splits
from mnist_models.errors import TrainingDiverged
from mnist_models.metrics import Evaluation, evaluate_scores
from mnist_models.trainers import ModelSink, make_trainer, trainer_class


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

    def log_model(self, sink: ModelSink) -> None:
        """Hands the model to ``sink`` as the ``log_model`` hook of the trainer registered for
        ``config.model`` says (some models keep nothing)."""
        trainer_class(self.config.model).log_model(self, sink)


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
