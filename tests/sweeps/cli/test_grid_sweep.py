"""The course report's grid through the command line: each point once, never twice."""

from __future__ import annotations

import itertools
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from sweeps.cli import main

GRID_FILE = Path(__file__).resolve().parents[3] / "sweeps" / "grid.toml"


def test_the_report_grid_tries_each_point_once_and_a_rerun_adds_nothing(
    tmp_path: Path, mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [
        *("sweep", "--config", str(GRID_FILE), "--study", "grid", "--epochs", "2"),
        *("--storage", storage, "--tracking-uri", store, "--data-dir", str(mnist_dir)),
        *("--set", "data.test_size=200"),
    ]
    assert main(args) == 0
    assert main(args) == 0  # the same command again: the grid is done, nothing is re-drawn
    assert "6 of 6 trials finished" in capsys.readouterr().err
    study = optuna.load_study(study_name="grid", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 6
    tried = sorted((t.params["lr"], t.params["batch_size"]) for t in study.trials)
    assert tried == sorted(itertools.product([0.001, 0.005], [64, 100, 128]))

    assert main(["studies", "--storage", storage]) == 0
    (row,) = [line for line in capsys.readouterr().err.splitlines() if "│ grid " in line]
    assert row.split("│")[2].strip() == "grid"
    client = MlflowClient(store)
    (parent,) = client.search_runs(
        [client.get_experiment_by_name("grid").experiment_id],
        "tags.`mnist_sweeps.role` = 'study'",
    )
    assert parent.data.params["sampler"] == "GridSampler"
    assert parent.data.tags["optuna.sampler"] == "grid"


def test_the_grid_sampler_on_a_space_without_grid_values_is_refused_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = tmp_path / "optuna.db"
    code = main(
        ["sweep", "--model", "mlp", "--sampler", "grid", "--storage", f"sqlite:///{storage}"]
    )
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error == (
        "mnist-sweep: error: command line: space.lr: sampler 'grid' needs the values to try, "
        "e.g. grid = [0.001, 0.005]"
    )
    assert not storage.exists()
