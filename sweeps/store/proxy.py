"""Optuna's gRPC storage proxy: one server in front of a database, ``grpc://HOST:PORT`` for workers.

Optuna's guidance for many workers: each worker holding its own database connections
overloads the database, so the workers talk gRPC to one proxy, which holds the connections
(and a cache) for all of them. The proxy serves database (RDB) storages only; Optuna's
``GrpcStorageProxy`` client has no trial heartbeats, so through it a dead worker's trial is
recovered by the PID check of the next command run on that worker's host
(``sweeps.engine.recovery.fail_dead_local_trials``), not by a heartbeat timeout.
"""

from __future__ import annotations

import sys
import warnings
from urllib.parse import urlsplit

import optuna

from mnist_models.errors import ConfigError, MnistSweepsError
from tracking.redact import redact_url

SCHEME = "grpc"
DEFAULT_PORT = 13000  # Optuna's own default for run_grpc_proxy_server
READY_TIMEOUT_S = 10.0  # how long a command waits for the proxy before it says it is not there


class ProxyLost(MnistSweepsError):
    """The storage proxy stopped answering while a command used it (killed, restarted, or the
    network between them went down)."""


def proxy_lost(exc: BaseException, url: str | None) -> ProxyLost | None:
    """``exc`` as a one-line :class:`ProxyLost` when a gRPC "unavailable" is behind it, else None.

    The gRPC error may sit anywhere in the chain: Optuna's trial loop can raise a second error
    while it reports the first (its ``tell`` fails too), so causes and contexts are searched.
    Trials that finished are in the database behind the proxy; the trial that was running is
    recovered by the next command run on this host (``fail_dead_local_trials``).
    """
    grpc = sys.modules.get("grpc")  # not imported: no gRPC call was made, so none failed
    if grpc is None:
        return None
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        code = getattr(error, "code", None)  # a grpc.Call's status; a bare RpcError has none
        unavailable = callable(code) and code() == grpc.StatusCode.UNAVAILABLE
        if isinstance(error, grpc.RpcError) and unavailable:
            where = f"--storage {redact_url(url)!r}: " if url else ""
            return ProxyLost(
                f"{where}the storage proxy stopped answering (gRPC UNAVAILABLE); "
                "trials finished so far are kept in its database; re-run the same command "
                "once the proxy is back to finish the budget"
            )
        pending += [error.__cause__, error.__context__]
    return None


def proxy_address(url: str) -> tuple[str, int]:
    """``(host, port)`` of a ``grpc://HOST:PORT`` URL.

    Raises:
        ConfigError: When the URL lacks the host or the port.
    """
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:  # a port that is not a number, or out of range
        host, port = None, None
    if parts.scheme != SCHEME or not host or port is None or parts.path not in ("", "/"):
        raise ConfigError(f"--storage {url!r}: expected grpc://HOST:PORT (a storage proxy)")
    return host, port


def open_proxy(url: str, timeout: float = READY_TIMEOUT_S) -> optuna.storages.BaseStorage:
    """A client of the storage proxy at ``url``, once the proxy answers.

    Raises:
        ConfigError: When no proxy answers at ``url`` within ``timeout`` seconds.
    """
    host, port = proxy_address(url)
    with warnings.catch_warnings():  # "experimental" since Optuna 4.2
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.GrpcStorageProxy(host=host, port=port)
    try:
        storage.wait_server_ready(timeout=timeout)
    except ConnectionError:  # Optuna's wording for "not ready within the timeout"
        storage.close()
        raise ConfigError(
            f"--storage {url!r}: no storage proxy answers at {host}:{port}; start one with "
            "`mnist-sweep storage-proxy --storage DATABASE_URL`"
        ) from None
    return storage


def serve(storage: optuna.storages.BaseStorage, host: str, port: int) -> None:
    """Serves ``storage`` to ``grpc://host:port`` workers until interrupted.

    ``storage`` is wrapped by ``optuna.storages.get_storage`` first, as Optuna asks: a bare
    ``RDBStorage`` has no in-process cache and would send every worker's reads to the database.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.run_grpc_proxy_server(
            optuna.storages.get_storage(storage), host=host, port=port
        )
