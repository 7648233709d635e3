"""Optuna storages: the local default, URL handling and credential redaction."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial
from sqlalchemy.exc import SQLAlchemyError

from mnist_models.errors import ConfigError
from tracking.redact import redact_url
from tracking.runs import use_write_ahead_log

__all__ = ["default_storage", "local_path", "open_storage", "redact_url", "storage_kind"]

DEFAULT_STORAGE_FILE = "optuna.db"
# Trial heartbeats of RDB storages (see sweeps.engine.recovery): a running trial stamps the storage
# every HEARTBEAT_INTERVAL_S; one silent for GRACE_PERIOD_S is failed and re-run.
HEARTBEAT_INTERVAL_S = 10
GRACE_PERIOD_S = 60
_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def default_storage(folder: str | Path = ".") -> str:
    """A local SQLite file in ``folder`` (the working folder by default)."""
    return f"sqlite:///{Path(folder) / DEFAULT_STORAGE_FILE}"


def storage_kind(url: str) -> str:
    """``rdb`` or ``journal``, checked without connecting or creating anything.

    Raises:
        ConfigError: For an unsupported URL, naming it with its password redacted.
    """
    scheme = url.split(":", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme in _SCHEMES:
        return "rdb"
    if not scheme and url.endswith((".journal", ".log")):
        return "journal"
    raise ConfigError(
        f"--storage {redact_url(url)!r}: expected a database URL "
        f"(sqlite:///file.db, postgresql://..., mysql://...) or a path ending in .journal"
    )


def open_storage(
    url: str | None,
    dead_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    grace_period: int = GRACE_PERIOD_S,
) -> optuna.storages.BaseStorage:
    """Opens ``url`` (an RDB URL or a ``.journal``/``.log`` file path) as an Optuna storage.

    Args:
        url: The storage; ``None`` is the local default.
        dead_trial_callback: With an RDB storage, turns on Optuna's trial heartbeats: a
            running trial silent for ``grace_period`` seconds is failed and passed to this.
            Journal files have no heartbeats in Optuna.
        heartbeat_interval: Seconds between heartbeats of a running trial.
        grace_period: Seconds of silence after which a running trial counts as dead.
    """
    url = url or default_storage()
    kind = storage_kind(url)
    local = local_path(url)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)  # like the file itself, made on demand
    if kind == "rdb":
        engine_kwargs = _SQLITE_ENGINE if url.startswith("sqlite") else None
        try:
            if dead_trial_callback is None:
                storage = optuna.storages.RDBStorage(url, engine_kwargs)
            else:
                with warnings.catch_warnings():  # heartbeats are "experimental" since Optuna 2.9
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    storage = optuna.storages.RDBStorage(
                        url,
                        engine_kwargs,
                        heartbeat_interval=heartbeat_interval,
                        grace_period=grace_period,
                        heartbeat_stale_trial_callback=dead_trial_callback,
                    )
        except (SQLAlchemyError, ImportError, RuntimeError, ValueError) as exc:
            # Unreachable server, unknown host, database or role, rejected password, missing
            # driver, bad port: one line naming the URL, never a traceback or the password.
            raise ConfigError(
                f"--storage {redact_url(url)!r}: cannot open it ({_reason(exc, url)})"
                + (_driver_hint(url, exc.name) if isinstance(exc, ImportError) else "")
            ) from None
        if local is not None:
            use_write_ahead_log(local)
        return storage
    return optuna.storages.JournalStorage(JournalFileBackend(url))


# Several worker processes on one SQLite file (optuna issue 820, "database is locked"): wait for
# the lock instead of failing at once, and let readers proceed beside the writer (WAL).
_SQLITE_ENGINE = {"connect_args": {"timeout": 60}}


def _driver_hint(url: str, missing: str | None) -> str:
    """What to install (and write) when the URL's database driver, module ``missing``,
    cannot be imported."""
    dialect, _, driver = url.split("://", 1)[0].partition("+")
    if dialect == "postgresql" and driver in ("", "psycopg") and missing != "psycopg2":
        # SQLAlchemy 2.1 maps a plain postgresql:// to psycopg 3, which the extra installs.
        return "; install the driver: pip install 'mnist-sweeps[postgres]'"
    if dialect == "postgresql":  # psycopg2 (SQLAlchemy 2.0's default for postgresql://) or other
        return (
            f"; {driver or missing} is not installed: pip install 'mnist-sweeps[postgres]' "
            "and use a postgresql+psycopg:// URL (psycopg 3)"
        )
    if dialect == "mysql" and driver == "pymysql":
        return "; install the driver: pip install 'mnist-sweeps[mysql]'"
    if dialect == "mysql":
        # SQLAlchemy maps a plain mysql:// to MySQLdb (mysqlclient, which needs a C compiler and
        # the MySQL headers); the extra installs the pure-Python PyMySQL instead.
        return (
            "; install the driver: pip install 'mnist-sweeps[mysql]' and "
            "use a mysql+pymysql:// URL (mysql:// means the MySQLdb driver)"
        )
    return ""  # oracle, mssql: no extra of ours; the driver's own error names the module


def _reason(exc: BaseException, url: str) -> str:
    """The first line of the driver's error, with the URL's password masked."""
    cause = getattr(exc, "orig", None) or exc.__cause__ or exc
    text = f"{type(cause).__name__}: {cause}".strip().splitlines()[0]
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    for secret in {password, unquote(password or "")} - {None, ""}:
        text = text.replace(str(secret), "***")
    return text


def local_path(url: str) -> Path | None:
    """The file behind a SQLite URL or a journal path; ``None`` for servers and in-memory."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return None if path in ("", ":memory:") else Path(path)
    return Path(url) if "://" not in url else None
