"""Optuna storages: the local default, URL handling and credential redaction."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import optuna
from optuna.storages.journal import JournalFileBackend

from mnist_models.errors import ConfigError

DEFAULT_STORAGE_FILE = "optuna.db"
_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


def default_storage(folder: str | Path = ".") -> str:
    """A local SQLite file in ``folder`` (the working folder by default)."""
    return f"sqlite:///{Path(folder) / DEFAULT_STORAGE_FILE}"


def redact_url(url: str | None) -> str:
    """Replaces the password of ``scheme://user:password@host/...`` with ``***``.

    Anything shown or logged about a storage or tracking URL goes through this first.
    """
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.sub(r"(//[^/:@]*):[^@/]*@", r"\1:***@", url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[-1]}"))


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


def open_storage(url: str | None) -> optuna.storages.BaseStorage:
    """Opens ``url`` (an RDB URL or a ``.journal``/``.log`` file path) as an Optuna storage."""
    url = url or default_storage()
    kind = storage_kind(url)
    local = local_path(url)
    if local is not None:
        local.parent.mkdir(parents=True, exist_ok=True)  # like the file itself, made on demand
    if kind == "rdb":
        return optuna.storages.RDBStorage(url)
    return optuna.storages.JournalStorage(JournalFileBackend(url))


def local_path(url: str) -> Path | None:
    """The file behind a SQLite URL or a journal path; ``None`` for servers and in-memory."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return None if path in ("", ":memory:") else Path(path)
    return Path(url) if "://" not in url else None
