"""Flags several commands share, as argparse parent parsers, each flag's help written once.

A command lists the parsers it takes in its ``PARENTS``; a factory's argument is the one
thing that differs between commands (whether ``--storage`` is required, what the default of
``--tracking-uri`` or ``--experiment`` is for that command).
"""

from __future__ import annotations

import argparse
from typing import Any

from mnist_models.choices import DATASETS
from mnist_models.config import MODELS
from mnist_models.errors import ConfigError
from sweeps.spec.sweep_file import MAX_REPEATS, SweepConfig, parse_overrides
from sweeps.store.storage import redact_url

MLFLOW_DEFAULT = "MLflow's local sqlite:///mlflow.db"


def _parent() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(add_help=False)


def storage_parser(required: bool = False) -> argparse.ArgumentParser:
    """``--storage URL``: the Optuna storage; with ``required``, no default is offered."""
    parser = _parent()
    default = "" if required else " (default: sqlite:///optuna.db in the working folder)"
    parser.add_argument(
        "--storage",
        required=required,
        metavar="URL",
        help="Optuna storage: sqlite:///file.db, postgresql://..., mysql://... or a .journal "
        f"file{default}",
    )
    return parser


def data_dir_parser() -> argparse.ArgumentParser:
    """``--data-dir DIR`` in the ``data`` group."""
    parser = _parent()
    parser.add_argument_group("data").add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder with the four MNIST IDX files (default: $MNIST_DIR, then the "
        "cache, then ~/.keras/datasets/mnist.npz, then download)",
    )
    return parser


def tracking_uri_parser(default: str = MLFLOW_DEFAULT) -> argparse.ArgumentParser:
    """``--tracking-uri URI`` in the ``tracking`` group; ``default`` says what its absence means."""
    parser = _parent()
    parser.add_argument_group("tracking").add_argument(
        "--tracking-uri", metavar="URI", help=f"MLflow tracking URI (default: {default})"
    )
    return parser


def experiment_parser(default: str | None = None) -> argparse.ArgumentParser:
    """``--experiment NAME`` in the ``tracking`` group; ``default`` says what its absence means."""
    parser = _parent()
    parser.add_argument_group("tracking").add_argument(
        "--experiment",
        metavar="NAME",
        help="MLflow experiment name" + (f" (default: {default})" if default else ""),
    )
    return parser


def config_parsers() -> list[argparse.ArgumentParser]:
    """The configuration, data and tracking flags of ``sweep``, ``train`` and ``compare``."""
    parser = _parent()
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
    parser.add_argument_group("data").add_argument(
        "--dataset",
        choices=DATASETS,
        help="auto: full MNIST, else the bundled 5,000-digit sample with a "
        "warning (default); mnist: never fall back; sample: the sample",
    )
    return [parser, data_dir_parser(), tracking_uri_parser(), experiment_parser()]


def resolve_sweep(args: argparse.Namespace, **settings: Any) -> SweepConfig:
    """The sweep file (or the model's default) with every flag of ``config_parsers`` applied.

    Raises:
        ConfigError: For a bad ``--repeats`` or flags that contradict each other or the file.
    """
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


def ui_hint(tracking_uri: str | None) -> str:
    """``browse: ...``: how to look at what a command logged to ``tracking_uri``."""
    store = tracking_uri or "sqlite:///mlflow.db"
    if store.startswith(("http://", "https://")):
        return f"browse: {redact_url(store)}"
    return f"browse: mnist-sweep ui --tracking-uri {redact_url(store)}"


def check_port(port: int) -> None:
    """Refuses a ``--port`` no server can listen on, before anything starts.

    Raises:
        ConfigError: Outside 1-65535.
    """
    if not 1 <= port <= 65535:
        raise ConfigError(f"--port {port}: expected 1-65535")
