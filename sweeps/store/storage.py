"""Optuna storages: the local default, URL handling and credential redaction."""

from __future__ import annotations

import contextlib
import sqlite3
import warnings
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import optuna
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial
from sqlalchemy.exc import SQLAlchemyError

from mnist_models.errors import ConfigError
from sweeps.store import proxy
from tracking.redact import redact_url
from tracking.runs import sqlite_path, use_write_ahead_log

__all__ = [
    "default_storage",
    "load_existing_study",
    "local_path",
    "open_existing_storage",
    "open_storage",
    "redact_url",
    "sqlite_path",
    "storage_kind",
]

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
    """``rdb``, ``journal`` or ``grpc`` (a storage proxy), checked without connecting or
    creating anything.

    Raises:
        ConfigError: For an unsupported URL, naming it with its password redacted.
    """
    scheme = url.split(":", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme in _SCHEMES:
        return "rdb"
    if scheme == proxy.SCHEME:
        proxy.proxy_address(url)  # a host and a port, or a one-line error
        return "grpc"
    if not scheme and url.endswith((".journal", ".log")):
        return "journal"
    raise ConfigError(
        f"--storage {redact_url(url)!r}: expected a database URL "
        f"(sqlite:///file.db, postgresql://..., mysql://...), a storage proxy "
        f"(grpc://HOST:PORT) or a path ending in .journal"
    )


def open_storage(
    url: str | None,
    dead_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    grace_period: int = GRACE_PERIOD_S,
) -> optuna.storages.BaseStorage:
    """Opens ``url`` (an RDB URL, a ``grpc://`` storage proxy or a ``.journal``/``.log`` file
    path) as an Optuna storage.

    Args:
        url: The storage; ``None`` is the local default.
        dead_trial_callback: With an RDB storage, turns on Optuna's trial heartbeats: a
            running trial silent for ``grace_period`` seconds is failed and passed to this.
            Journal files and the storage proxy have no heartbeats in Optuna.
        heartbeat_interval: Seconds between heartbeats of a running trial.
        grace_period: Seconds of silence after which a running trial counts as dead.
    """
    url = url or default_storage()
    kind = storage_kind(url)
    if kind == "grpc":
        return proxy.open_proxy(url)
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


def open_existing_storage(
    url: str,
    dead_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    *,
    reads_only: bool = False,
) -> optuna.storages.BaseStorage:
    """Opens a storage that must already exist: a missing local file is refused, not created.

    Args:
        url: The storage, as for ``open_storage``.
        dead_trial_callback: As for ``open_storage`` (a worker's dead-trial handler).
        reads_only: For the commands that only read a storage (``best``, ``studies``): a
            missing file is "no Optuna storage at <file> (nothing created)", and a SQLite file
            without Optuna's tables is refused rather than given them.

    Raises:
        ConfigError: For a bad URL, a missing (or, with ``reads_only``, non-Optuna) file, a
            missing database driver or a server that cannot be reached, naming the URL with
            its password redacted.
    """
    storage_kind(url)
    shown = redact_url(url)
    local = local_path(url)
    if local is not None and not local.is_file():
        if reads_only:
            raise ConfigError(
                f"--storage {shown!r}: no Optuna storage at {local} (nothing created)"
            )
        raise ConfigError(f"--storage {shown!r}: no such file")
    if reads_only and local is not None and url.startswith("sqlite") and _not_optuna(local):
        raise ConfigError(f"--storage {shown!r}: {local} is not an Optuna storage")
    return open_storage(url, dead_trial_callback)  # a driver or server error: one ConfigError


def _not_optuna(path: Path) -> bool:
    """Whether a SQLite file surely lacks Optuna's tables (opening it would add them).

    Checked read-only; a file that cannot be read that way (locked, say) is left to Optuna.
    """
    read_only = f"{path.resolve().as_uri()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(read_only, uri=True)) as db:
            found = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'studies'").fetchone()
    except sqlite3.OperationalError:
        return False
    except sqlite3.DatabaseError:  # not a SQLite file at all
        return True
    return found is None


def load_existing_study(
    name: str, url: str, storage: optuna.storages.BaseStorage, hint: str | None = None
) -> optuna.Study:
    """Loads study ``name`` from ``storage`` (opened from ``url``).

    Args:
        name: The study.
        url: The storage's URL, named (redacted) in the error.
        storage: The opened storage.
        hint: What to do about an unknown study; without one, the error lists the known ones.

    Raises:
        ConfigError: If the storage holds no study ``name``.
    """
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        where = f"--study {name!r}: no such study in {redact_url(url)!r}"
        if hint is not None:
            raise ConfigError(f"{where}; {hint}") from None
        known = ", ".join(sorted(optuna.get_all_study_names(storage))) or "none"
        raise ConfigError(f"{where} (studies: {known})") from None


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
        return sqlite_path(url)
    return Path(url) if "://" not in url else None
