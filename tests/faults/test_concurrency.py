"""Four workers on one PostgreSQL study: exactly the trials asked for, nothing doubled."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from helpers.checks import assert_exactly, finish
from helpers.cli import start_cli

pytestmark = pytest.mark.fault


@pytest.mark.slow  # minutes on two cores: CI runs it in its `pytest -m slow` pass
def test_four_workers_on_postgresql_give_exactly_twelve_trials(
    tmp_path: Path, mnist_dir: Path, pg_storage: str
) -> None:
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = start_cli(
        [
            *("sweep", "--model", "mlp", "--study", "four", "--trials", "12", "--workers", "4"),
            *("--storage", pg_storage, "--tracking-uri", tracking, "--pruner", "none"),
            *("--train-size", "2000", "--epochs", "2"),
            *("--set", "data.test_size=300", "--set", "mlp.hidden_sizes=[32]"),
        ],
        tmp_path,
        mnist_dir,
    )
    output = finish(sweep)
    assert "4 worker processes" in output
    study = optuna.load_study(study_name="four", storage=pg_storage)
    real = assert_exactly(12, study, tracking)
    assert len({t.user_attrs["worker"] for t in real}) >= 3, "the trials ran in several workers"
