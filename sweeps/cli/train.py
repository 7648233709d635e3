"""``mnist-sweep train``: train one configuration and log it as one MLflow run."""

from __future__ import annotations

import argparse

from mnist_models.config import TrainConfig
from mnist_models.data.cache import SplitsCache
from mnist_models.seeds import repeat_seeds
from mnist_models.training import load_splits
from sweeps.cli.common import config_parsers, resolve_sweep, ui_hint
from sweeps.console import console
from sweeps.engine.objective import short_params
from sweeps.engine.progress import EpochPrinter, epoch_lines
from tracking import Tracker, train_and_end
from tracking.repeats import run_repeats, summary_lines
from tracking.tags import ROLE_TAG

HELP = "train one configuration and log it as a single MLflow run"
DESCRIPTION = (
    "Train one configuration (the fixed settings of the sweep file, with overrides) and log "
    "it as one MLflow run."
)
PARENTS = tuple(config_parsers())
AFTER_STOP = "its MLflow run is marked KILLED"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds nothing: ``train`` takes only the shared configuration flags (``PARENTS``)."""


def run(args: argparse.Namespace) -> int:
    """Trains the configuration (K times with ``--repeats K``) and prints its test accuracy."""
    sweep = resolve_sweep(args, repeats=args.repeats)
    config = sweep.base
    tracker = Tracker(args.experiment or f"mnist-{config.model}-train", args.tracking_uri)
    label = f"train-{config.model} " + short_params(
        {
            "lr": config.lr,
            "batch_size": config.batch_size,
            "dropout": config.dropout,
            "augment": config.augment,
        }
    )
    tags = {ROLE_TAG: "train", "model": config.model}
    if sweep.repeats > 1:
        return _train_repeats(args, tracker, config, sweep.repeats, label, tags)
    splits = load_splits(config, args.data_dir)
    logged = tracker.start_run(label, tags=tags)
    result = train_and_end(logged, config, splits, [EpochPrinter(label)])
    console.print(
        f"test accuracy [bold]{result.test.accuracy:.4f}[/] after {result.epochs_trained} "
        f"epochs in {result.seconds:.1f}s on {splits.info.name} "
        f"({len(splits.y_train)} train / {len(splits.y_val)} val / {len(splits.y_test)} test); "
        f"MLflow run {logged.run_id}"
    )
    console.print(ui_hint(args.tracking_uri))
    return 0


def _train_repeats(
    args: argparse.Namespace,
    tracker: Tracker,
    config: TrainConfig,
    repeats: int,
    label: str,
    tags: dict[str, str],
) -> int:
    """``train --repeats K``: one run with a nested run per seed; prints mean ± CI."""
    splits_for = SplitsCache(args.data_dir)
    splits_for(config)  # missing data fails before any run is created
    seeds = repeat_seeds(config.seed, repeats)
    parent, records = run_repeats(
        tracker, f"{label} x{repeats}", config, seeds, splits_for, tags, callbacks_for=epoch_lines
    )
    for line in summary_lines(records):
        console.print(line, markup=False)
    console.print(f"MLflow run {parent.run_id} ({repeats} repeats nested under it)", markup=False)
    console.print(ui_hint(args.tracking_uri))
    return 0
