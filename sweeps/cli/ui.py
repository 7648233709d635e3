"""``mnist-sweep ui``: the MLflow UI on the store the sweeps write to, stopped completely."""

from __future__ import annotations

import argparse
import threading

import mlflow
from mlflow import MlflowClient

from mnist_models.errors import ConfigError
from sweeps.cli.common import check_port, tracking_uri_parser
from sweeps.console import console
from sweeps.store.storage import redact_url
from tracking.runs import sqlite_path
from tracking.server import MlflowServer
from tracking.views import experiment_url

HELP = "browse the sweeps in the MLflow UI (Ctrl-C stops it)"
DESCRIPTION = (
    "Start the MLflow UI on the tracking store the sweeps write to, print the URL of each "
    "experiment, and stop every process it started on Ctrl-C, SIGTERM or SIGHUP (exit code "
    "128 + signal), or when this command is killed."
)
PARENTS = (tracking_uri_parser(),)
AFTER_STOP = "the MLflow UI is stopped"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds where the UI listens."""
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: loopback)")
    parser.add_argument("--port", type=int, default=5000, help="port to listen on (default: 5000)")


def run(args: argparse.Namespace, stop: threading.Event | None = None) -> int:
    """Serves until Ctrl-C (or until ``stop`` is set, for tests).

    Raises:
        ConfigError: For a bad ``--port``, or a store that is not an existing SQLite file.
    """
    uri = args.tracking_uri or mlflow.get_tracking_uri()
    check_port(args.port)
    database = sqlite_path(uri)
    if database is None or not database.is_file():
        raise ConfigError(f"--tracking-uri {redact_url(uri)!r}: expected an existing SQLite store")
    artifacts = database.resolve().parent / "mlruns"
    server = MlflowServer(uri, artifacts, port=args.port, host=args.host)
    # Ctrl-C, SIGTERM or SIGHUP (a KeyboardInterrupt, see sweeps.engine.signals) leave the block
    # with the server's whole process group stopped; SIGKILL of this process stops it too.
    with server:
        console.print(f"MLflow UI for {redact_url(uri)} at [bold]{server.url}[/]")
        for experiment in MlflowClient(uri).search_experiments():
            console.print(f"  {experiment.name}: {experiment_url(server.url, experiment)}")
        console.print("Ctrl-C stops it")
        (stop or threading.Event()).wait()
    console.print("stopped", markup=False)
    return 0
