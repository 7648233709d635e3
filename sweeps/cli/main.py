"""The ``mnist-sweep`` command line."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import optuna

from mnist_models.config import MODELS, TrainConfig
from mnist_models.data import DatasetFallbackWarning
from mnist_models.data.cache import SplitsCache
from mnist_models.errors import ConfigError, DataError, MnistSweepsError
from mnist_models.seeds import repeat_seeds
from mnist_models.training import load_splits
from sweeps.cli.ui import register as register_ui
from sweeps.console import console, quiet_expected_trial_ends
from sweeps.engine.objective import short_params
from sweeps.engine.progress import EpochPrinter, epoch_lines
from sweeps.engine.samplers import SAMPLERS
from sweeps.engine.session import SweepSettings
from sweeps.engine.signals import exit_code, stopping_on_signals
from sweeps.engine.sweep import run_sweep
from sweeps.engine.workers import register as register_worker
from sweeps.results.best import register as register_export
from sweeps.results.report import register as register_report
from sweeps.spec.sweep_file import MAX_REPEATS, PRUNERS, SweepConfig, parse_overrides
from sweeps.store.ranking import test_accuracy_text, value_text
from sweeps.store.storage import redact_url
from sweeps.verify.compare import DEFAULT_REPEATS, parse_vary, run_compare
from sweeps.verify.reproduce import register as register_reproduce
from tracking import Tracker, TrackingUnavailableWarning, train_and_end
from tracking.repeats import run_repeats, summary_lines

EXIT_CONFIG = 2


def _add_config_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("configuration")
    group.add_argument(
        "--model",
        choices=MODELS,
        default=None,
        help="model to train; picks the packaged sweeps/<model>.toml (default: mlp)",
    )
    group.add_argument(
        "--config",
        metavar="FILE",
        help="a sweep file ([fixed] + [space.*]) or a config.toml of a logged run",
    )
    group.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set mlp.hidden_sizes=[512,256]; "
        "repeatable; fixes the key if it is searched",
    )
    group.add_argument("--epochs", type=int, help="override the number of epochs")
    group.add_argument(
        "--train-size", type=int, metavar="N", help="use only the first N training images"
    )
    group.add_argument("--seed", type=int, help="seed of training (and of the sampler's draws)")
    group.add_argument(
        "--repeats",
        type=int,
        metavar="K",
        help="train each configuration K times, repeat r of every configuration with the "
        "same seed (the first: --seed), and report the mean with its 95%% CI "
        "(default: the sweep file's sweep.repeats, else 1)",
    )
    _add_data_and_tracking_args(parser)


def _add_data_and_tracking_args(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        choices=("auto", "mnist", "sample"),
        help="auto: full MNIST, else the bundled 5,000-digit sample with a "
        "warning (default); mnist: never fall back; sample: the sample",
    )
    data.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder with the four MNIST IDX files (default: $MNIST_DIR, then the "
        "cache, then ~/.keras/datasets/mnist.npz, then download)",
    )
    tracking = parser.add_argument_group("tracking")
    tracking.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI (default: MLflow's local sqlite:///mlflow.db)",
    )
    tracking.add_argument("--experiment", metavar="NAME", help="MLflow experiment name")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnist-sweep",
        description="Optuna sweeps of MNIST classifiers, every trial tracked in MLflow.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sweep = commands.add_parser(
        "sweep",
        help="run (or resume) an Optuna study",
        description="Run an Optuna study maximising validation accuracy; one MLflow parent run "
        "per study and one child run per trial. Re-running the same command resumes.",
    )
    _add_config_args(sweep)
    study = sweep.add_argument_group("study")
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
        "--storage",
        metavar="URL",
        help="Optuna storage: sqlite:///file.db, postgresql://..., or a .journal "
        "file (default: sqlite:///optuna.db in the working folder)",
    )
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
    sweep.set_defaults(handler=cmd_sweep)

    train = commands.add_parser(
        "train",
        help="train one configuration and log it as a single MLflow run",
        description="Train one configuration (the fixed settings of the sweep file, with "
        "overrides) and log it as one MLflow run.",
    )
    _add_config_args(train)
    train.set_defaults(handler=cmd_train)
    compare = commands.add_parser(
        "compare",
        help="does X help? train variants on common seeds and test the paired differences",
        description="Train each variant of a configuration K times, repeat r of every variant "
        "with the same seed, and print each variant's mean ± 95%% CI and, against the first "
        "variant, the paired difference with its CI, p-value (paired t-test) and a verdict. "
        "One MLflow parent run, a run per variant, the repeats under each. Exits 0 whatever "
        "the verdict.",
    )
    _add_config_args(compare)
    compare.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a config key and its values, the first being the baseline, e.g. --vary "
        "augment=false,true; repeat the flag to cross several keys",
    )
    compare.add_argument(
        "--metric",
        choices=("test_accuracy", "val_accuracy"),
        default="test_accuracy",
        help="the figure the paired test compares (default: test_accuracy)",
    )
    compare.set_defaults(handler=cmd_compare)
    register_report(commands)
    register_worker(commands)
    register_export(commands)
    register_reproduce(commands)
    register_ui(commands)
    return parser


def resolve_sweep(args: argparse.Namespace, **settings: Any) -> SweepConfig:
    """The sweep file (or the model's default) with every CLI override applied."""
    repeats = getattr(args, "repeats", None)
    if repeats is not None and not 1 <= repeats <= MAX_REPEATS:
        raise ConfigError(f"--repeats {repeats}: expected 1 to {MAX_REPEATS}")
    if args.config:
        sweep = SweepConfig.from_file(args.config)
        if args.model and args.model != sweep.base.model:
            raise ConfigError(
                f"--model {args.model} conflicts with model = {sweep.base.model!r} in {args.config}"
            )
    else:
        sweep = SweepConfig.for_model(args.model or "mlp")
    overrides = parse_overrides(args.overrides)
    if args.model and "model" in overrides:
        raise ConfigError("--model conflicts with --set model=...")
    for flag, key in (
        ("epochs", "epochs"),
        ("train_size", "data.train_size"),
        ("seed", "seed"),
        ("dataset", "data.dataset"),
    ):
        value = getattr(args, flag)
        if value is not None:
            if key in overrides:
                raise ConfigError(f"--{flag.replace('_', '-')} conflicts with --set {key}=...")
            overrides[key] = value
    return sweep.with_overrides(overrides, **settings)


def cmd_sweep(args: argparse.Namespace) -> int:
    if args.trials is not None and args.trials < 1:
        raise ConfigError(f"--trials {args.trials}: expected >= 1")
    if args.timeout is not None and not args.timeout > 0:  # NaN too
        raise ConfigError(f"--timeout {args.timeout}: expected > 0 seconds")
    sweep = resolve_sweep(
        args, pruner=args.pruner, sampler=args.sampler, trials=args.trials, repeats=args.repeats
    )
    study_name = args.study or f"mnist-{sweep.base.model}"
    settings = SweepSettings(
        study=study_name,
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
    console.print(_ui_hint(args.tracking_uri))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
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
    tags = {"mnist_sweeps.role": "train", "model": config.model}
    if sweep.repeats > 1:
        return _train_repeats(args, tracker, config, sweep.repeats, label, tags)
    splits = load_splits(config, args.data_dir)
    run = tracker.start_run(label, tags=tags)
    result = train_and_end(run, config, splits, [EpochPrinter(label)])
    console.print(
        f"test accuracy [bold]{result.test.accuracy:.4f}[/] after {result.epochs_trained} "
        f"epochs in {result.seconds:.1f}s on {splits.info.name} "
        f"({len(splits.y_train)} train / {len(splits.y_val)} val / {len(splits.y_test)} test); "
        f"MLflow run {run.run_id}"
    )
    console.print(_ui_hint(args.tracking_uri))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
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
    console.print(_ui_hint(args.tracking_uri))
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
    run, records = run_repeats(
        tracker, f"{label} x{repeats}", config, seeds, splits_for, tags, callbacks_for=epoch_lines
    )
    for line in summary_lines(records):
        console.print(line, markup=False)
    console.print(f"MLflow run {run.run_id} ({repeats} repeats nested under it)", markup=False)
    console.print(_ui_hint(args.tracking_uri))
    return 0


def _ui_hint(tracking_uri: str | None) -> str:
    store = tracking_uri or "sqlite:///mlflow.db"
    if store.startswith(("http://", "https://")):
        return f"browse: {redact_url(store)}"
    return f"browse: mnist-sweep ui --tracking-uri {redact_url(store)}"


_default_showwarning = warnings.showwarning


def _show_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    """Shows the dataset fallback as one plain, visible line; other warnings as usual."""
    if issubclass(category, (DatasetFallbackWarning, TrackingUnavailableWarning)):
        console.print(f"[yellow bold]warning:[/] {message}", highlight=False)
    else:
        _default_showwarning(message, category, *args, **kwargs)


def _print_error(kind: str, exc: BaseException) -> None:
    """One line, as written: control characters (a newline in a key) escaped, no emoji codes."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(exc))
    console.print(f"mnist-sweep: {kind}: {text}", markup=False, emoji=False)


_AFTER_STOP = {
    "sweep": "re-run the same command to resume",
    "worker": "re-run the same command to resume",
    "train": "its MLflow run is marked KILLED",
    "reproduce": "its MLflow run is marked KILLED",
    "ui": "the MLflow UI is stopped",
}


def _stopped_line(command: str, interrupt: KeyboardInterrupt) -> str:
    """``interrupted; re-run the same command to resume`` (Ctrl-C), ``stopped by SIGTERM; ...``"""
    name = getattr(interrupt, "name", "SIGINT")
    what = "interrupted" if name == "SIGINT" else f"stopped by {name}"
    after = _AFTER_STOP.get(command)
    return f"{what}; {after}" if after else what


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _show_warning
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what Optuna does
    quiet_expected_trial_ends()
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # store creation/migration chatter
    # One "Retrying ..." line per backoff step: an outage is reported once, by the run logger.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    try:
        with stopping_on_signals():
            return int(args.handler(args))
    except ConfigError as exc:
        _print_error("error", exc)
        return EXIT_CONFIG
    except DataError as exc:
        _print_error("data error", exc)
        return 1
    except MnistSweepsError as exc:
        _print_error("error", exc)
        return 1
    except KeyboardInterrupt as exc:
        console.print(_stopped_line(args.command, exc), markup=False)
        return exit_code(exc)
    finally:
        warnings.showwarning = _default_showwarning


if __name__ == "__main__":
    sys.exit(main())
