"""The ``mnist-sweep`` command line: the table of commands, the parser built from it, main()."""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Sequence
from typing import Any, Protocol

import optuna

from mnist_models.data import DatasetFallbackWarning
from mnist_models.errors import ConfigError, DataError, MnistSweepsError
from sweeps.cli import (
    best,
    compare,
    report,
    reproduce,
    storage_proxy,
    studies,
    sweep,
    train,
    ui,
    worker,
)
from sweeps.console import console, quiet_expected_trial_ends
from sweeps.engine.signals import exit_code, stopping_on_signals
from sweeps.store.proxy import proxy_lost
from tracking import TrackingUnavailableWarning
from tracking.environment import configure_mlflow

EXIT_CONFIG = 2


class Command(Protocol):
    """What each module of ``COMMANDS`` defines (read-only, hence the properties)."""

    @property
    def HELP(self) -> str:
        """One line, in ``mnist-sweep --help``."""

    @property
    def DESCRIPTION(self) -> str:
        """Atop ``mnist-sweep COMMAND --help``."""

    @property
    def PARENTS(self) -> Sequence[argparse.ArgumentParser]:
        """The shared flags it takes (parent parsers from ``sweeps.cli.common``)."""

    @property
    def AFTER_STOP(self) -> str | None:
        """What Ctrl-C or a stop signal leaves behind, when worth saying."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Adds the command's own flags (those of ``PARENTS`` are there already)."""

    def run(self, args: argparse.Namespace, /) -> int:
        """Runs the command; returns its exit code (errors are raised, see ``main``)."""


# Command name -> its module, in the order of `mnist-sweep --help`.
COMMANDS: dict[str, Command] = {
    "sweep": sweep,
    "train": train,
    "compare": compare,
    "report": report,
    "worker": worker,
    "studies": studies,
    "best": best,
    "reproduce": reproduce,
    "ui": ui,
    "storage-proxy": storage_proxy,
}


def build_parser() -> argparse.ArgumentParser:
    """The ``mnist-sweep`` parser, a subcommand per entry of ``COMMANDS``."""
    parser = argparse.ArgumentParser(
        prog="mnist-sweep",
        description="Optuna sweeps of MNIST classifiers, every trial tracked in MLflow.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, command in COMMANDS.items():
        sub = commands.add_parser(
            name, help=command.HELP, description=command.DESCRIPTION, parents=command.PARENTS
        )
        command.add_arguments(sub)
    return parser


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


def _stopped_line(command: str, interrupt: KeyboardInterrupt) -> str:
    """``interrupted; re-run the same command to resume`` (Ctrl-C), ``stopped by SIGTERM; ...``"""
    name = getattr(interrupt, "name", "SIGINT")
    what = "interrupted" if name == "SIGINT" else f"stopped by {name}"
    after = COMMANDS[command].AFTER_STOP
    return f"{what}; {after}" if after else what


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one ``mnist-sweep`` command.

    Returns:
        The exit code: the command's (0 on success), 2 for bad input (a ``ConfigError``), 1 for
        other errors of ours, 128 + the signal's number when stopped by one.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = _show_warning
    configure_mlflow()  # before any Tracker: every process this command starts inherits it
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what Optuna does
    quiet_expected_trial_ends()
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # store creation/migration chatter
    # One "Retrying ..." line per backoff step: an outage is reported once, by the run logger.
    logging.getLogger("urllib3.connectionpool").setLevel(logging.ERROR)
    try:
        with stopping_on_signals():
            return int(COMMANDS[args.command].run(args))
    except ConfigError as exc:
        _print_error("error", exc)
        return EXIT_CONFIG
    except DataError as exc:
        _print_error("data error", exc)
        return 1
    except MnistSweepsError as exc:
        _print_error("error", exc)
        return 1
    except Exception as exc:
        lost = proxy_lost(exc, getattr(args, "storage", None))
        if lost is None:
            raise
        _print_error("error", lost)  # not gRPC's 20-line traceback, once per command
        return 1
    except KeyboardInterrupt as exc:
        console.print(_stopped_line(args.command, exc), markup=False)
        return exit_code(exc)
    finally:
        warnings.showwarning = _default_showwarning


if __name__ == "__main__":
    sys.exit(main())
