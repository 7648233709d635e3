"""``mnist-sweep compare``: does X help? Variants trained on common seeds, paired tests."""

from __future__ import annotations

import argparse

from sweeps.cli.common import config_parsers, resolve_sweep, ui_hint
from sweeps.console import console
from sweeps.verify.compare import DEFAULT_REPEATS, parse_vary, run_compare
from tracking.repeats import SUMMARISED

HELP = "does X help? train variants on common seeds and test the paired differences"
DESCRIPTION = (
    "Train each variant of a configuration K times, repeat r of every variant with the same "
    "seed, and print each variant's mean ± 95%% CI and, against the first variant, the paired "
    "difference with its CI, p-value (paired t-test) and a verdict. One MLflow parent run, a "
    "run per variant, the repeats under each. Exits 0 whatever the verdict."
)
PARENTS = tuple(config_parsers())
AFTER_STOP = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds ``--vary`` (the variants) and ``--metric`` (the figure compared)."""
    parser.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a config key and its values, the first being the baseline, e.g. --vary "
        "augment=false,true; repeat the flag to cross several keys",
    )
    parser.add_argument(
        "--metric",
        choices=sorted(SUMMARISED),
        default="test_accuracy",
        help="the figure the paired test compares (default: test_accuracy)",
    )


def run(args: argparse.Namespace) -> int:
    """Trains every variant on common seeds and prints the paired comparison."""
    variants = parse_vary(args.vary)  # a malformed --vary fails before anything loads
    sweep = resolve_sweep(args, repeats=args.repeats)
    run_compare(
        sweep.base,
        variants,
        args.repeats or (sweep.repeats if sweep.repeats > 1 else DEFAULT_REPEATS),
        args.metric,
        args.data_dir,
        args.tracking_uri,
        args.experiment,
    )
    console.print(ui_hint(args.tracking_uri))
    return 0
