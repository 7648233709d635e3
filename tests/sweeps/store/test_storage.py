"""Storage URLs: redaction and clear errors."""

from __future__ import annotations

import sys
from pathlib import Path

import optuna
import pytest

from mnist_models.errors import ConfigError
from sweeps.store.storage import default_storage, local_path, open_storage, redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://alice:s3cret@db.example:5432/optuna",
            "postgresql://alice:***@db.example:5432/optuna",
        ),
        ("mysql+pymysql://root:p%40ss@127.0.0.1/test", "mysql+pymysql://root:***@127.0.0.1/test"),
        ("https://user:tok@mlflow.example", "https://user:***@mlflow.example"),
        ("postgresql://alice@db/optuna", "postgresql://alice@db/optuna"),
        ("sqlite:///optuna.db", "sqlite:///optuna.db"),
        ("", ""),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_unknown_storage_is_a_config_error_without_the_password() -> None:
    with pytest.raises(ConfigError) as caught:
        open_storage("redis2://bob:hunter2@localhost/0")
    assert "hunter2" not in str(caught.value)
    assert "bob:***@" in str(caught.value)


def test_sqlite_and_journal_storages_open(tmp_path: Path) -> None:
    sqlite = open_storage(default_storage(tmp_path))
    assert isinstance(sqlite, optuna.storages.RDBStorage)
    journal = open_storage(str(tmp_path / "study.journal"))
    assert isinstance(journal, optuna.storages.JournalStorage)


def test_local_storages_create_their_folder(tmp_path: Path) -> None:
    nested = tmp_path / "runs" / "2026"
    open_storage(f"sqlite:///{nested / 'optuna.db'}")
    assert (nested / "optuna.db").is_file()
    open_storage(str(tmp_path / "j" / "study.journal"))
    assert (tmp_path / "j").is_dir()
    assert local_path("postgresql://u:p@h/db") is None
    assert local_path("sqlite:///:memory:") is None


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("postgresql://alice:s3cret@127.0.0.1:1/optuna", "pip install 'mnist-sweeps[postgres]'"),
        ("postgresql+psycopg://alice:s3cret@127.0.0.1:1/optuna", "'mnist-sweeps[postgres]'"),
        (
            "postgresql+psycopg2://alice:s3cret@127.0.0.1:1/optuna",
            "pip install 'mnist-sweeps[postgres]' and use a postgresql+psycopg:// URL",
        ),
        (
            "mysql://alice:s3cret@127.0.0.1:1/optuna",
            "pip install 'mnist-sweeps[mysql]' and use a mysql+pymysql:// URL",
        ),
        ("mysql+pymysql://alice:s3cret@127.0.0.1:1/optuna", "pip install 'mnist-sweeps[mysql]'"),
    ],
)
def test_a_missing_driver_names_the_extra_to_install(
    url: str, hint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for driver in ("psycopg", "psycopg2", "pymysql", "MySQLdb"):  # as if none were installed
        monkeypatch.setitem(sys.modules, driver, None)
    with pytest.raises(ConfigError) as caught:
        open_storage(url)
    message = str(caught.value)
    assert hint in message and "\n" not in message
    assert "ModuleNotFoundError" in message  # the driver's own reason is kept
    assert "s3cret" not in message and "alice:***@127.0.0.1:1" in message
