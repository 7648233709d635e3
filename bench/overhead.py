"""Harness overhead: one sweep trial (Optuna + MLflow) vs the bare training loop, same config.

Ours is one real trial through the product's sweep machinery: ``sweeps.engine.sweep.run_sweep`` on a
:class:`SweepConfig` whose search space is fixed to one point (the packaged sweep's fixed
settings, every searched key pinned with an override), with a temporary SQLite Optuna storage
and a temporary SQLite MLflow store, so the trial creates its MLflow child run, logs the
config, dataset, per-epoch metric batches, figures (confusion matrix, curves, misclassified
digits), artifacts (and for the CNN the Keras model), reports each epoch to the pruner and
prints its progress. The baseline is ``mnist_models.training.train(config, splits)`` with the
same config and seed and no callbacks. Both use the same splits, loaded once before timing:
data loading is not part of the comparison.

"The trial" is timed as the sweep's trial loop (``sweeps.engine.session.work``, wrapped with a timer
here): Optuna's sampling, trial bookkeeping in its storage, the objective, the MLflow run and
the after-trial callbacks. What ``run_sweep`` does once per study (opening the stores, the
parent run, the study report) is printed beside it but is not part of the ratio. One
untimed warm-up of each variant comes first (a fresh MLflow store's migrations, first imports,
Keras tracing machinery); then the two variants alternate for several rounds (a b b a a b ...)
and each variant's figure is its minimum over the rounds (median printed too).

MLP: the packaged sweep's fixed settings (784-256-10, Adam, batch 128, dropout 0.2, float32) on
all training images, with enough epochs that the bare trial takes >= 20 s (calibrated on the
warm-up; ``--epochs`` fixes it). CNN: the packaged CNN settings, 1 epoch on 20,000 images
(about half a minute on 2 cores; a packaged trial is 3 epochs on 54,000). The time of each
logging call of the last "ours" round is printed, to show where any overhead goes. Last line:
``overhead ratio=<max of the ratios> target<=1.02``.

Usage: python bench/overhead.py [--quick] [--rounds R] [--epochs E] [--hidden H] [--no-cnn]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import matplotlib.figure
import numpy as np
import optuna
from mlflow import MlflowClient

import sweeps.engine.objective
import sweeps.engine.session
import tracking.logged_training
import tracking.run_logger
from mnist_models.config import TrainConfig
from mnist_models.data import Splits, load_mnist, make_splits
from mnist_models.training import TrainResult, train
from sweeps.engine.session import SweepSettings
from sweeps.engine.sweep import run_sweep
from sweeps.spec.sweep_file import SweepConfig
from tracking.run_logger import RunLogger
from tracking.runs import Tracker

MIN_MLP_TRIAL_S = 20.0
# The packaged sweeps search these; pinned to one point (the MLP's TrainConfig defaults, the
# CNN recipe's settings) so both variants train the same config.
PINNED = {
    "mlp": {"lr": 0.001, "batch_size": 128, "dropout": 0.2, "augment": False},
    "cnn": {"lr": 0.001, "batch_size": 86, "dropout": 0.25, "augment": False},
}


class Timings:
    """Seconds and calls per label, for the functions :meth:`wrap` instruments."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.active = False

    def reset(self) -> None:
        self.seconds.clear()
        self.calls.clear()

    def wrap(self, owner: Any, name: str, label: str, scope: bool = False) -> None:
        """Times ``owner.name``; only inside the ``scope`` call (the trial) unless it is it."""
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if not (scope or self.active):
                return original(*args, **kwargs)
            self.active = True
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start
                self.calls[label] = self.calls.get(label, 0) + 1
                if scope:
                    self.active = False

        setattr(owner, name, timed)

    def get(self, label: str) -> float:
        return self.seconds.get(label, 0.0)


TIMINGS = Timings()
CLIENT_CALLS = (
    "create_run",
    "log_batch",
    "log_text",
    "log_dict",
    "log_inputs",
    "log_figure",
    "log_artifacts",
    "set_terminated",
)


# (label, indent) in print order; an indented label is part of the one above it.
BREAKDOWN = [
    ("trial (sweeps.engine.session.work)", 0),
    ("objective", 1),
    ("tracker.start_run", 2),
    ("runner.run", 2),
    ("run.log_config", 3),
    ("run.log_dataset", 3),
    ("train (inside train_logged)", 3),
    ("run.log_epoch", 4),
    ("trial.report + should_prune", 4),
    ("run.log_result", 3),
    ("figure: confusion matrix", 4),
    ("figure: curves", 4),
    ("figure: misclassified", 4),
    ("run.log_model", 3),
    ("close run (tags + end)", 2),
    ("the same trial by MLflow client call", 0),
    *((f"client.{name}", 1) for name in CLIENT_CALLS),
    ("Figure.savefig (PNG rendering)", 2),
]


def instrument() -> None:
    """Wraps the product's trial steps with timers (module attributes only; no code change)."""
    t = TIMINGS
    t.wrap(sweeps.engine.session, "work", "trial (sweeps.engine.session.work)", scope=True)
    t.wrap(sweeps.engine.objective.Objective, "__call__", "objective")
    t.wrap(Tracker, "start_run", "tracker.start_run")
    t.wrap(sweeps.engine.session.InProcessRunner, "run", "runner.run")
    t.wrap(RunLogger, "log_config", "run.log_config")
    t.wrap(RunLogger, "log_dataset", "run.log_dataset")
    t.wrap(RunLogger, "log_epoch", "run.log_epoch")
    t.wrap(RunLogger, "log_result", "run.log_result")
    t.wrap(RunLogger, "log_model", "run.log_model")
    t.wrap(tracking.logged_training, "train", "train (inside train_logged)")
    t.wrap(tracking.run_logger, "confusion_matrix_figure", "figure: confusion matrix")
    t.wrap(tracking.run_logger, "curves_figure", "figure: curves")
    t.wrap(tracking.run_logger, "misclassified_figure", "figure: misclassified")
    t.wrap(sweeps.engine.objective, "_close", "close run (tags + end)")
    t.wrap(optuna.trial.Trial, "report", "trial.report + should_prune")
    t.wrap(optuna.trial.Trial, "should_prune", "trial.report + should_prune")
    # The store writes themselves, whichever step makes them; PNG rendering apart.
    for name in CLIENT_CALLS:
        t.wrap(MlflowClient, name, f"client.{name}")
    t.wrap(matplotlib.figure.Figure, "savefig", "Figure.savefig (PNG rendering)")


def sweep_for(model: str, overrides: dict[str, Any]) -> SweepConfig:
    """The packaged sweep of ``model`` with every searched key pinned: a one-point space."""
    sweep = SweepConfig.for_model(model)
    sweep = sweep.with_overrides({**PINNED[model], **overrides}, source="bench", trials=1)
    if len(sweep.space):
        raise SystemExit(f"overhead: the {model} space still searches {list(sweep.space.params)}")
    return sweep


class Variants:
    """Runs the bare and the tracked trial of one config on one set of splits."""

    def __init__(self, sweep: SweepConfig, splits: Splits, folder: Path, label: str) -> None:
        self.sweep, self.splits, self.label = sweep, splits, label
        self.settings = SweepSettings(
            study="",
            storage=f"sqlite:///{folder / 'optuna.db'}",
            tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
            experiment=f"bench-overhead-{label}",
            seed=sweep.base.seed,
        )
        self.count = 0

    def bare(self) -> tuple[float, TrainResult]:
        start = time.perf_counter()
        result = train(self.sweep.base, self.splits)
        return time.perf_counter() - start, result

    def ours(self) -> tuple[float, float, optuna.Study]:
        """(seconds of the trial, seconds of the whole ``run_sweep``, the study)."""
        self.count += 1
        settings = dataclasses.replace(self.settings, study=f"{self.label}-{self.count}")
        TIMINGS.reset()
        start = time.perf_counter()
        study = run_sweep(self.sweep, settings, lambda config: self.splits)
        whole = time.perf_counter() - start
        states = [t.state for t in study.trials]
        if states != [optuna.trial.TrialState.COMPLETE]:
            raise SystemExit(f"overhead: the {self.label} trial did not complete: {states}")
        return TIMINGS.get("trial (sweeps.engine.session.work)"), whole, study


def compare(variants: Variants, rounds: int) -> tuple[float, float]:
    """Interleaved rounds; prints each and the last "ours" breakdown.

    Returns:
        ours/bare of the minimums, and the bare minimum in seconds.
    """
    bare_s: list[float] = []
    ours_s: list[float] = []
    whole_s: list[float] = []
    breakdown: dict[str, float] = {}
    calls: dict[str, int] = {}
    for round_ in range(rounds):
        order = ("bare", "ours") if round_ % 2 == 0 else ("ours", "bare")
        for which in order:
            if which == "bare":
                seconds, result = variants.bare()
                bare_s.append(seconds)
                bare_val = result.val_accuracy
            else:
                seconds, whole, study = variants.ours()
                ours_s.append(seconds)
                whole_s.append(whole)
                ours_val = study.trials[0].value
                breakdown, calls = dict(TIMINGS.seconds), dict(TIMINGS.calls)
        same = "same val acc" if ours_val == bare_val else f"val acc {ours_val} vs {bare_val}"
        print(
            f"  {variants.label} round {round_ + 1} ({' then '.join(order)}): "
            f"bare {bare_s[-1]:7.2f} s  ours {ours_s[-1]:7.2f} s  "
            f"ratio {ours_s[-1] / bare_s[-1]:.3f}  (whole run_sweep {whole_s[-1]:.2f} s; {same})",
            flush=True,
        )
    ratio = min(ours_s) / min(bare_s)
    median_ratio = statistics.median(ours_s) / statistics.median(bare_s)
    print(
        f"{variants.label}: bare min {min(bare_s):.2f} s, ours min {min(ours_s):.2f} s -> "
        f"ratio of minimums {ratio:.3f} (of medians {median_ratio:.3f}); a whole one-trial "
        f"run_sweep min {min(whole_s):.2f} s (the per-study part, not in the ratio: "
        f"{min(w - o for w, o in zip(whole_s, ours_s, strict=True)):.2f} s)"
    )
    print_breakdown(variants.label, breakdown, calls, bare_s[-1])
    return ratio, min(bare_s)


MLFLOW_CALLS = (
    "tracker.start_run",
    "run.log_config",
    "run.log_dataset",
    "run.log_epoch",
    "run.log_result",
    "run.log_model",
    "close run (tags + end)",
)


def print_breakdown(
    label: str, breakdown: dict[str, float], calls: dict[str, int], bare: float
) -> None:
    print(f"{label}: where the last 'ours' trial went (seconds, calls):")
    for name, indent in BREAKDOWN:
        if name == "the same trial by MLflow client call":
            print(f"  {name}:")
        elif name in breakdown:
            width = 40 - 2 * indent
            print(f"  {'  ' * indent}{name:<{width}} {breakdown[name]:8.3f}  x{calls[name]}")
    trial = breakdown.get("trial (sweeps.engine.session.work)", math.nan)
    objective = breakdown.get("objective", math.nan)
    inside = breakdown.get("train (inside train_logged)", math.nan)
    logging_s = sum(breakdown.get(k, 0.0) for k in MLFLOW_CALLS)
    print(
        f"  MLflow calls in all {logging_s:.3f} s; Optuna outside the objective "
        f"{trial - objective:.3f} s; train() inside the trial {inside:.2f} s (bare run of "
        f"the same round {bare:.2f} s)"
    )


def warm_up(sweep: SweepConfig, splits: Splits, folder: Path, label: str) -> None:
    """One untimed run of each variant (store migrations, first imports, tracing)."""
    variants = Variants(sweep, splits, folder, f"{label}-warm-up")
    variants.bare()
    variants.ours()


def mlp_epochs(base: TrainConfig, splits: Splits, target_s: float) -> int:
    """Epochs for a bare MLP trial of at least ``target_s`` (from a 2-epoch bare run)."""
    result = train(base.replace({"epochs": 2}), splits)
    per_epoch = min(event.seconds for event in result.history)
    fixed = max(0.0, result.seconds - sum(event.seconds for event in result.history))
    epochs = max(2, math.ceil(1.1 * (target_s - fixed) / per_epoch))
    print(
        f"mlp calibration: {per_epoch:.2f} s per epoch + {fixed:.2f} s per run -> {epochs} "
        f"epochs for a bare trial of >= {target_s:.0f} s"
    )
    return epochs


def run_model(
    label: str, sweep: SweepConfig, splits: Splits, folder: Path, rounds: int
) -> tuple[float, float]:
    base = sweep.base
    shape = f" {list(base.mlp.hidden_sizes)}" if base.model == "mlp" else ""
    print(
        f"\n{label}: {base.model}{shape}, {base.epochs} epoch(s), batch {base.batch_size}, "
        f"{len(splits.y_train)} training / {len(splits.y_val)} validation / "
        f"{len(splits.y_test)} test images, seed {base.seed}",
        flush=True,
    )
    return compare(Variants(sweep, splits, folder, label), rounds)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 MLP images, a tiny CNN")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; 2 if --quick)")
    parser.add_argument("--epochs", type=int, help="MLP epochs (default: calibrated)")
    parser.add_argument("--hidden", type=int, default=256, help="MLP hidden width (default 256)")
    parser.add_argument("--no-cnn", action="store_true", help="MLP only")
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 3)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    np.seterr(all="ignore")
    instrument()
    data = load_mnist(os.environ.get("MNIST_DIR"), dataset="auto")
    n = len(data.y_train)
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # MLP: the packaged sweep's fixed settings, all training images (10,000 if --quick).
        mlp: dict[str, Any] = {"mlp.hidden_sizes": [args.hidden]}
        if args.quick:
            mlp["data.train_size"] = min(10_000, n)
        sweep = sweep_for("mlp", {**mlp, "epochs": 2})
        splits = make_splits(data, sweep.base.data, sweep.base.seed, dtype=sweep.base.dtype)
        warm_up(sweep_for("mlp", {**mlp, "epochs": 1}), splits, folder, "mlp")
        target_s = 4.0 if args.quick else MIN_MLP_TRIAL_S
        epochs = args.epochs or mlp_epochs(sweep.base, splits, target_s)
        sweep = sweep_for("mlp", {**mlp, "epochs": epochs})
        ratios["mlp"], bare_s = run_model("mlp", sweep, splits, folder, rounds)
        if bare_s < MIN_MLP_TRIAL_S:
            print(f"note: the bare MLP trial took {bare_s:.1f} s, under the target's 20 s")
        if not args.no_cnn:
            # CNN: the packaged CNN settings, 1 epoch on 20,000 images (tiny if --quick): about
            # half a minute here, shorter than a packaged trial (3 epochs on 54,000 images).
            size, test = (600, 500) if args.quick else (min(20_000, n), 2_000)
            cnn = {"epochs": 1, "data.train_size": size, "data.test_size": test}
            sweep = sweep_for("cnn", cnn)
            splits = make_splits(data, sweep.base.data, sweep.base.seed, dtype=sweep.base.dtype)
            warm_up(sweep, splits, folder, "cnn")
            ratios["cnn"], _ = run_model("cnn", sweep, splits, folder, rounds)
    print()
    for label, ratio in ratios.items():
        print(f"overhead_{label} ratio={ratio:.2f} target<=1.02")
    if args.quick:
        print("(--quick: shorter trials than the target's >= 20 s MLP trial; indicative only)")
    print(f"overhead ratio={max(ratios.values()):.2f} target<=1.02")
    return 0


if __name__ == "__main__":
    sys.exit(main())
