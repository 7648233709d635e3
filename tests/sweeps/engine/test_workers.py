"""Several worker processes on one study: SQLite on one machine, PostgreSQL across "hosts"."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
from helpers.checks import assert_exactly, finish
from helpers.cli import start_cli

from sweeps.engine.workers import share_the_gpu

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


def test_three_local_workers_share_one_sqlite_study(tmp_path: Path, mnist_dir: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["sweep", "--study", "par", "--storage", storage, "--tracking-uri", tracking]
    output = finish(
        start_cli([*args, "--workers", "3", "--trials", "7", *TINY], tmp_path, mnist_dir)
    )
    assert "3 worker processes" in output
    study = optuna.load_study(study_name="par", storage=storage)
    real = assert_exactly(7, study, tracking)
    assert len({t.user_attrs["worker"] for t in real}) >= 2, "the trials ran in several processes"


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
        finish(process)
    study = optuna.load_study(study_name="pg", storage=pg_storage)
    real = assert_exactly(8, study, tracking)
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


def test_workers_on_one_gpu_each_take_only_the_memory_they_use() -> None:
    environ = {"TF_FORCE_GPU_ALLOW_GROWTH": "false"}  # set by the user: kept
    share_the_gpu(environ)
    assert environ == {
        "XLA_PYTHON_CLIENT_PREALLOCATE": "false",
        "TF_FORCE_GPU_ALLOW_GROWTH": "false",
    }
