"""``mnist-sweep storage-proxy``: Optuna's gRPC storage proxy in front of a database."""

from __future__ import annotations

import argparse

from mnist_models.errors import ConfigError
from sweeps.cli.common import check_port, storage_parser
from sweeps.console import console
from sweeps.store import proxy
from sweeps.store.storage import open_storage, redact_url, storage_kind

HELP = "serve a database storage to many workers over gRPC (Ctrl-C stops it)"
DESCRIPTION = (
    "Run Optuna's gRPC storage proxy in front of a database storage, so that many workers "
    "share one study through one process holding the database connections: they pass "
    "--storage grpc://HOST:PORT instead of the database URL. Stops on Ctrl-C, SIGTERM or SIGHUP."
)
PARENTS = (storage_parser(required=True),)
AFTER_STOP = "the storage proxy is stopped"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds where the proxy listens."""
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default: loopback; 0.0.0.0 serves other hosts)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=proxy.DEFAULT_PORT,
        help=f"port to listen on (default: {proxy.DEFAULT_PORT})",
    )


def run(args: argparse.Namespace) -> int:
    """Serves ``--storage`` until stopped.

    Raises:
        ConfigError: For a bad ``--port``, a storage that is not a database, or one that
            cannot be opened.
    """
    check_port(args.port)
    kind = storage_kind(args.storage)
    if kind != "rdb":  # Optuna's proxy serves RDB storages only (optuna issue 6084)
        raise ConfigError(
            f"--storage {redact_url(args.storage)!r}: expected a database URL "
            "(sqlite:///file.db, postgresql://..., mysql://...) for the proxy to serve"
        )
    storage = open_storage(args.storage)  # a database that cannot be opened: one line, now
    console.print(
        f"storage proxy for {redact_url(args.storage)} at "
        f"[bold]grpc://{args.host}:{args.port}[/]; workers pass "
        f"--storage grpc://HOST:{args.port}; Ctrl-C stops it"
    )
    proxy.serve(storage, args.host, args.port)
    return 0
