"""Experiments and run creation against one MLflow tracking store."""

from __future__ import annotations

import base64
import contextlib
import re
import sqlite3
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit, urlunsplit

from mlflow import MlflowClient, get_tracking_uri
from mlflow.entities import ViewType
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from mnist_models.errors import ConfigError
from tracking.failures import (
    TRACKING_ERRORS,
    TrackingUnavailableWarning,
    tracking_failure,
    with_lock_retries,
)
from tracking.redact import redact_url
from tracking.run_logger import RunLogger
from tracking.views import KIND_TAG, MODEL_TRAINING


class Tracker:
    """Creates and finds runs in one experiment of one tracking store.

    Args:
        experiment: Experiment name; created if missing.
        tracking_uri: Any MLflow tracking URI; ``None`` uses MLflow's own default (a local
            SQLite store, ``mlflow.db`` in the working folder).
    """

    def __init__(self, experiment: str, tracking_uri: str | None = None) -> None:
        if not experiment:
            raise ValueError(f"{experiment=} must be a non-empty name")
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.tracking_uri = self.client.tracking_uri
        check_server(self.tracking_uri)
        self.experiment_name = experiment
        self.experiment_id = self._experiment_id(experiment)
        database = sqlite_path(self.tracking_uri)
        if database is not None:  # several worker processes log into one file
            use_write_ahead_log(database)

    def _experiment_id(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            if found.lifecycle_stage == "deleted":
                self.client.restore_experiment(found.experiment_id)
            return found.experiment_id
        return self.client.create_experiment(
            name,
            artifact_location=_artifact_location(self.tracking_uri, name),
            tags={KIND_TAG: MODEL_TRAINING},  # the UI opens it on its runs, not on GenAI pages
        )

    def start_run(
        self,
        name: str,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        keep_going: bool = False,
    ) -> RunLogger:
        """Creates a RUNNING run, nested under ``parent_run_id`` when given.

        Args:
            name: The run's name.
            tags: Its tags.
            parent_run_id: The run to nest it under.
            keep_going: If the store fails, warn and return a logger that records nothing,
                so that the caller's training goes on (sweep trials); otherwise raise.
        """
        all_tags = {key: str(value) for key, value in (tags or {}).items()}
        if parent_run_id is not None:
            all_tags[MLFLOW_PARENT_RUN_ID] = parent_run_id
        try:
            run = with_lock_retries(
                lambda: self.client.create_run(self.experiment_id, run_name=name, tags=all_tags)
            )
        except TRACKING_ERRORS as exc:
            if not keep_going:
                raise
            failure = tracking_failure("create_run", exc)
            warnings.warn(
                TrackingUnavailableWarning(
                    f"MLflow run {name!r} not created: {failure}; training goes on unlogged"
                ),
                stacklevel=2,
            )
            return RunLogger(self.client, None, failure)
        return RunLogger(self.client, run.info.run_id)

    def resume_run(self, run_id: str) -> RunLogger:
        """Reopens an existing run (for example a study's parent run after a restart)."""
        self.client.update_run(run_id, status="RUNNING")
        return RunLogger(self.client, run_id)

    def answers(self) -> bool:
        """Whether the store answers right now (a 2-second health check of a server)."""
        try:
            check_server(self.tracking_uri, timeout=2)
        except ConfigError:
            return False
        return True

    def find_runs(self, tags: Mapping[str, str]) -> list[str]:
        """Run ids of this experiment carrying all ``tags`` (oldest first)."""
        filter_string = " and ".join(
            f"tags.`{key}` = '{_quote(value)}'" for key, value in tags.items()
        )
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=filter_string,
            run_view_type=ViewType.ACTIVE_ONLY,
            order_by=["attributes.start_time ASC"],
        )
        return [run.info.run_id for run in runs]


def open_existing_store(
    tracking_uri: str | None, missing: str = "no such MLflow store"
) -> tuple[str, MlflowClient]:
    """A client of an existing tracking store: a missing SQLite file is refused, not created.

    Args:
        tracking_uri: Any MLflow tracking URI; ``None`` is MLflow's own default.
        missing: What the error says of a missing SQLite file (``{path}``: the file).

    Returns:
        The URI and a client of its store.

    Raises:
        ConfigError: ``--tracking-uri '<URI>': <missing>`` for a SQLite file that does not exist.
    """
    uri = tracking_uri or get_tracking_uri()
    database = sqlite_path(uri)
    if database is not None and not database.is_file():
        raise ConfigError(f"--tracking-uri {redact_url(uri)!r}: {missing.format(path=database)}")
    return uri, MlflowClient(tracking_uri=uri)


def check_server(tracking_uri: str, timeout: float = 10.0) -> None:
    """Fails fast, in one line, if an ``http(s)://`` tracking server does not answer.

    MLflow's own client retries an unreachable server for minutes before it gives up.

    Raises:
        ConfigError: The server is unreachable or not an MLflow server.
    """
    if urlparse(tracking_uri).scheme not in ("http", "https"):
        return
    shown = redact_url(tracking_uri)
    try:
        with urllib.request.urlopen(_health_request(tracking_uri), timeout=timeout) as reply:
            if reply.status != 200:
                raise ConfigError(f"--tracking-uri {shown}: /health answered {reply.status}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConfigError(
            f"--tracking-uri {shown}: MLflow server not reachable ({reason})"
        ) from None


def _health_request(tracking_uri: str) -> urllib.request.Request:
    """The server's ``/health``; ``user:password@`` in the URI is sent as basic auth, as
    MLflow's own client does (urllib would take it for part of the host name)."""
    parts = urlsplit(tracking_uri)
    path = parts.path.rstrip("/") + "/health"
    request = urllib.request.Request(
        urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], path=path))
    )
    if "@" in parts.netloc:
        login = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        request.add_header("Authorization", "Basic " + base64.b64encode(login.encode()).decode())
    return request


def use_write_ahead_log(path: Path) -> None:
    """Lets SQLite readers proceed beside a writer (WAL); stored in the file, so set once."""
    with contextlib.closing(sqlite3.connect(path, timeout=60)) as connection:
        connection.execute("PRAGMA journal_mode=WAL")


def sqlite_path(url: str) -> Path | None:
    """The file behind a ``sqlite:///`` URL (MLflow's or Optuna's); ``None`` for in-memory
    databases and anything that is not such a URL."""
    if not url.startswith("sqlite:///"):
        return None
    path = url.removeprefix("sqlite:///")
    return None if path in ("", ":memory:") else Path(path)


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def _artifact_location(tracking_uri: str, experiment: str) -> str | None:
    """Keeps artifacts of a local SQLite store beside the database, not in the working folder.

    MLflow's default for a local store is ``./mlruns`` relative to wherever the process was
    started, which scatters artifacts when the same store is used from different folders.
    """
    database = sqlite_path(tracking_uri)
    if database is None:
        return None  # servers and other stores manage their own artifact roots
    folder = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment)
    return (database.resolve().parent / "mlruns" / folder).as_uri()
