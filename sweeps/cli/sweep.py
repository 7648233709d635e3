"""``mnist-sweep sweep``: run (or resume) an Optuna study."""

from __future__ import annotations

import argparse

from mnist_models.errors import ConfigError
from sweeps.cli.common import config_parsers, resolve_sweep, storage_parser, ui_hint
from sweeps.console import console
from sweeps.engine.objective import short_params
from sweeps.engine.samplers import SAMPLERS
from sweeps.engine.session import SweepSettings
from sweeps.engine.sweep import run_sweep
from sweeps.spec.sweep_file import PRUNERS
from sweeps.store.ranking import test_accuracy_text, value_text

HELP = "run (or resume) an Optuna study"
DESCRIPTION = (
    "Run an Optuna study maximising validation accuracy; one MLflow parent run per study and "
    "one child run per trial. Re-running the same command resumes."
)
PARENTS = (*config_parsers(), storage_parser())
AFTER_STOP = "re-run the same command to resume"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the study's flags (budget, name, sampler, pruner, workers)."""
    study = parser.add_argument_group("study")
    study.add_argument(
        "--trials",
        type=int,
        metavar="N",
        help="finished trials the study should hold in total (a resumed study "
        "runs only the missing ones; default: the file's sweep.trials)",
    )
    study.add_argument("--timeout", type=float, metavar="S", help="stop starting trials after S s")
    study.add_argument("--study", metavar="NAME", help="study name (default: mnist-<model>)")
    study.add_argument(
        "--sampler",
        choices=SAMPLERS,
        help="override the file's sweep.sampler (grid: every point of the space's grid values)",
    )
    study.add_argument("--pruner", choices=PRUNERS, help="override the file's sweep.pruner")
    study.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="K",
        help="worker processes sharing the study on this machine (default 1); more hosts "
        "join with `mnist-sweep worker`",
    )
    study.add_argument(
        "--trial-process",
        action="store_true",
        help="train each trial in a fresh process that exits with it, so no memory "
        "(Keras graphs, GPU memory) carries over between trials; costs a few seconds per trial",
    )


def run(args: argparse.Namespace) -> int:
    """Runs the study's missing trials and prints its best trial.

    Raises:
        ConfigError: For a bad ``--trials`` or ``--timeout``, or a bad config or storage.
    """
    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials {args.trials}: expected >= 1")
    if args.timeout is not None and not args.timeout > 0:  # NaN too
        raise ConfigError(f"--timeout {args.timeout}: expected > 0 seconds")
    sweep = resolve_sweep(
        args, pruner=args.pruner, sampler=args.sampler, trials=args.trials, repeats=args.repeats
    )
    settings = SweepSettings(
        study=args.study or f"mnist-{sweep.base.model}",
        storage=args.storage,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        trials=args.trials,
        timeout=args.timeout,
        seed=sweep.base.seed,
        data_dir=args.data_dir,
        trial_process=args.trial_process,
        workers=args.workers,
    )
    study = run_sweep(sweep, settings)
    completed = [t for t in study.trials if t.value is not None and t.state.name == "COMPLETE"]
    if completed:
        best = study.best_trial
        console.print(
            f"best: trial {best.number} val acc [bold]{value_text(best)}[/] "
            f"test acc {test_accuracy_text(best)} {short_params(best.params)}"
        )
    console.print(ui_hint(args.tracking_uri))
    return 0
