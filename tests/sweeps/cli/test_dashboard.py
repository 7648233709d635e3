"""The Optuna storage a sweep writes opens unchanged in ``optuna-dashboard``."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import optuna
from helpers.cli import run_cli

from tracking.server import free_port


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.load(reply)


def _schema(database: Path) -> tuple[str, int]:
    """The storage's schema version and trial count, read without Optuna."""
    import sqlite3

    with contextlib.closing(sqlite3.connect(database)) as connection:
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        (trials,) = connection.execute("SELECT count(*) FROM trials").fetchone()
    return version, trials


def test_optuna_dashboard_reads_a_sweeps_study(tmp_path: Path, mnist_dir: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    done = run_cli(
        [
            *("sweep", "--model", "mlp", "--trials", "2", "--epochs", "2", "--study", "dash"),
            *("--storage", storage, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"),
            *("--set", "data.train_size=1500", "--set", "data.test_size=300"),
            *("--set", "mlp.hidden_sizes=[16]"),
        ],
        tmp_path,
        mnist_dir,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    before = _schema(tmp_path / "optuna.db")
    study = optuna.load_study(study_name="dash", storage=storage)

    port = free_port()
    dashboard = Path(sys.executable).with_name("optuna-dashboard")
    process = subprocess.Popen(
        [str(dashboard), storage, "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HOME": str(tmp_path)},  # gunicorn's control socket goes there
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                summaries = _get(f"{url}/api/studies")["study_summaries"]
                break
            except (urllib.error.URLError, OSError):
                assert process.poll() is None, process.communicate()[0]
                assert time.monotonic() < deadline, "optuna-dashboard never answered"
                time.sleep(0.3)
        (summary,) = [s for s in summaries if s["study_name"] == "dash"]
        assert summary["directions"] == ["maximize"]
        detail = _get(f"{url}/api/studies/{summary['study_id']}")
        shown = {t["number"]: (t["state"], t["values"]) for t in detail["trials"]}
        assert shown == {t.number: ("Complete", [t.value]) for t in study.trials}
        assert len(detail["trials"][0]["intermediate_values"]) == 2  # one per epoch
        with urllib.request.urlopen(f"{url}/dashboard", timeout=5) as page:
            assert page.status == 200
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(15)
    assert _schema(tmp_path / "optuna.db") == before, "the dashboard changed the storage"
    assert optuna.load_study(study_name="dash", storage=storage).best_value == study.best_value
