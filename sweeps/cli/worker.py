"""``mnist-sweep worker``: join an existing study and run its trials (on any host)."""

from __future__ import annotations

import argparse

from mnist_models.errors import ConfigError
from sweeps.cli.common import (
    data_dir_parser,
    experiment_parser,
    storage_parser,
    tracking_uri_parser,
)
from sweeps.console import console
from sweeps.engine.session import SweepSettings
from sweeps.engine.workers import join_study

HELP = "join an existing study and run its trials (any host)"
DESCRIPTION = (
    "Join a study created by `mnist-sweep sweep` and run trials until it holds its number of "
    "finished trials. The config comes from the study itself; start as many workers, on as "
    "many hosts, as the storage and tracking server can reach."
)
PARENTS = (
    storage_parser(required=True),
    data_dir_parser(),
    tracking_uri_parser(default="the one the study was created with"),
    experiment_parser(default="the study's"),
)
AFTER_STOP = "re-run the same command to resume"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the study to join and what may differ from the sweep that created it."""
    parser.add_argument("--study", required=True, metavar="NAME", help="the study to join")
    parser.add_argument(
        "--trials", type=int, metavar="N", help="override the study's finished-trial target"
    )
    parser.add_argument("--timeout", type=float, metavar="S", help="stop starting trials after S s")
    parser.add_argument(
        "--trial-process", action="store_true", help="train each trial in a fresh process"
    )


def run(args: argparse.Namespace) -> int:
    """Runs the study's trials until it holds its target; prints how many it holds.

    Raises:
        ConfigError: For a bad ``--trials``, or a storage or study that does not exist.
    """
    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials {args.trials}: expected >= 1")
    settings = SweepSettings(
        study=args.study,
        storage=args.storage,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        trials=args.trials,
        timeout=args.timeout,
        data_dir=args.data_dir,
        trial_process=args.trial_process,
    )
    study = join_study(settings)
    finished = [t for t in study.trials if t.state.is_finished() and t.value is not None]
    console.print(f"worker done: study {study.study_name} holds {len(finished)} finished trials")
    return 0
