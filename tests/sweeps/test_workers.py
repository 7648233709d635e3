"""Several worker processes on one study: SQLite on one machine, PostgreSQL across "hosts"."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from cli_helpers import start_cli
from mlflow import MlflowClient
from optuna.trial import TrialState

from sweeps.budget import SURPLUS_ATTR

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TINY = [
    "--model",
    "mlp",
    "--pruner",
    "none",
    "--train-size",
    "3000",
    "--epochs",
    "3",
    "--set",
    "data.test_size=500",
    "--set",
    "mlp.hidden_sizes=[64]",
]


def _finish(process: subprocess.Popen[str]) -> str:
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    return output


def _assert_exactly(
    n: int, study: optuna.Study, tracking_uri: str
) -> list[optuna.trial.FrozenTrial]:
    trials = study.trials
    assert len({t.number for t in trials}) == len(trials), "duplicate trial numbers"
    real = [t for t in trials if not t.user_attrs.get(SURPLUS_ATTR)]
    assert [t.state for t in real] == [TrialState.COMPLETE] * n, [t.state for t in trials]
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(study.study_name)
    runs = client.search_runs([experiment.experiment_id], "tags.`mnist_sweeps.role` = 'trial'")
    by_trial: dict[str, list[str]] = {}
    for run in runs:
        by_trial.setdefault(run.data.tags["optuna.trial"], []).append(run.info.status)
    assert by_trial == {str(t.number): ["FINISHED"] for t in real}, "one MLflow child per trial"
    parents = client.search_runs([experiment.experiment_id], "tags.`mnist_sweeps.role` = 'study'")
    assert len(parents) == 1
    return real


def test_three_local_workers_share_one_sqlite_study(tmp_path: Path, mnist_dir: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["sweep", "--study", "par", "--storage", storage, "--tracking-uri", tracking]
    output = _finish(
        start_cli([*args, "--workers", "3", "--trials", "7", *TINY], tmp_path, mnist_dir)
    )
    assert "3 worker processes" in output
    study = optuna.load_study(study_name="par", storage=storage)
    real = _assert_exactly(7, study, tracking)
    assert len({t.user_attrs["worker"] for t in real}) >= 2, "the trials ran in several processes"


@pytest.fixture
def pg_storage() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN, connect_timeout=3, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
    name = f"mnist_sweeps_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_a_sweep_and_two_joining_workers_on_postgresql(
    tmp_path: Path, mnist_dir: Path, pg_storage: str
) -> None:
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = start_cli(
        [
            *("sweep", "--study", "pg", "--storage", pg_storage, "--tracking-uri", tracking),
            *("--trials", "8", *TINY),
        ],
        tmp_path,
        mnist_dir,
    )
    deadline = time.monotonic() + 120
    while "pg" not in optuna.study.get_all_study_names(pg_storage):
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.communicate()[0]
        time.sleep(0.2)
    # Joining workers name only the study and its storage: config and MLflow come from it.
    workers = [
        start_cli(["worker", "--study", "pg", "--storage", pg_storage], tmp_path, mnist_dir)
        for _ in range(2)
    ]
    for process in [sweep, *workers]:
        _finish(process)
    study = optuna.load_study(study_name="pg", storage=pg_storage)
    real = _assert_exactly(8, study, tracking)
    assert len({t.user_attrs["worker"] for t in real}) >= 2
    assert {t.user_attrs["config"]["epochs"] for t in real} == {3}, "joiners used the stored config"


def test_joining_a_missing_study_is_a_one_line_error(tmp_path: Path, mnist_dir: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    missing = start_cli(["worker", "--study", "nope", "--storage", storage], tmp_path, mnist_dir)
    output, _ = missing.communicate(timeout=120)
    assert missing.returncode == 2
    assert output.strip().splitlines() == [
        f"mnist-sweep: error: --storage {storage!r}: no such file"
    ]
    assert not (tmp_path / "optuna.db").exists(), "a read of a missing storage creates nothing"
