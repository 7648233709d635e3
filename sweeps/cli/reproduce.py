"""``mnist-sweep reproduce``: re-train a logged run, or the course report's published runs."""

from __future__ import annotations

import argparse

from mnist_models.errors import ConfigError
from sweeps.cli.common import data_dir_parser, experiment_parser, tracking_uri_parser
from sweeps.reported.registry import DIFFERS
from sweeps.reported.reproduce import reproduce_reported
from sweeps.verify.reproduce import reproduce_run

HELP = "re-train a logged run from its config.toml and compare the results"
DESCRIPTION = (
    "Re-train any logged run (a sweep trial or a `train` run) from its logged config.toml "
    "into a new MLflow run tagged reproduces=RUN_ID, then print the original and new final "
    "metrics side by side."
)
PARENTS = (
    data_dir_parser(),
    tracking_uri_parser(),
    experiment_parser(default="the original run's"),
)
AFTER_STOP = "its MLflow run is marked KILLED"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds RUN_ID, the published runs' flags and ``--repeats``."""
    parser.add_argument(
        "run_id", metavar="RUN_ID", nargs="?", help="MLflow run id of the run to re-run"
    )
    reported = parser.add_argument_group("the course report's published runs")
    reported.add_argument(
        "--reported",
        metavar="ID",
        help="re-run a published number from the registry (sweeps/reported/ID.toml), a "
        "comma-separated list, or 'all'; logged in the 'reported-runs' experiment",
    )
    reported.add_argument(
        "--corrected",
        action="store_true",
        help="also run each entry with its faithful-mode switches off and show that figure",
    )
    reported.add_argument("--report", metavar="FILE.md", help="write the table and notes here")
    parser.add_argument(
        "--repeats",
        type=int,
        metavar="K",
        help="train K times (the original seed first, then derived seeds), nested under one "
        "new run, and say whether the original lies within their seed-to-seed spread "
        "(default: the original run's `repeats` param, else 1; with --reported: 1)",
    )


def run(args: argparse.Namespace) -> int:
    """Re-trains ``RUN_ID``'s config into a new run (or the ``--reported`` entries).

    Returns:
        0, or with ``--reported`` 1 when a published figure differs from its reproduction.

    Raises:
        ConfigError: For contradicting flags, or a store or run that does not exist.
    """
    if args.repeats is not None and args.repeats < 1:
        raise ConfigError(f"--repeats {args.repeats}: expected >= 1")
    if args.reported is not None:
        if args.run_id is not None:
            raise ConfigError("give either RUN_ID or --reported ID, not both")
        rows = reproduce_reported(
            args.reported,
            args.corrected,
            args.data_dir,
            args.tracking_uri,
            args.report,
            repeats=args.repeats or 1,
        )
        return 1 if any(row.verdict.label == DIFFERS for row in rows) else 0
    if args.run_id is None:
        raise ConfigError("RUN_ID: expected an MLflow run id (or --reported ID|all)")
    if args.corrected or args.report:
        raise ConfigError("--corrected and --report go with --reported")
    reproduce_run(args.run_id, args.repeats, args.data_dir, args.tracking_uri, args.experiment)
    return 0
