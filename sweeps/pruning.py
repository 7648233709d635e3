"""Pruning: per-epoch validation accuracy reported to the trial, which may stop training."""

from __future__ import annotations

import math
from typing import Protocol

import optuna

from mnist_models.callbacks import Callback, EpochResult, StopTraining


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """``median`` waits for 5 finished trials and 2 epochs; ``hyperband`` is Optuna's default."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"{name=} must be one of 'none', 'median', 'hyperband'")


class Reportable(Protocol):
    """The part of ``optuna.Trial`` pruning uses (a trial, or a proxy in a worker process)."""

    def report(self, value: float, step: int) -> None: ...

    def should_prune(self) -> bool: ...


class PruningCallback(Callback):
    """Reports ``val_accuracy`` each epoch; asks training to stop if the pruner says so."""

    def __init__(self, trial: Reportable) -> None:
        self.trial = trial
        self.pruned_at: int | None = None

    def on_epoch_end(self, result: EpochResult) -> None:
        if math.isnan(result.val_accuracy):
            return
        self.trial.report(result.val_accuracy, step=result.epoch)
        if self.trial.should_prune():
            self.pruned_at = result.epoch
            raise StopTraining(f"pruned at epoch {result.epoch}")
