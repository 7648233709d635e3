"""Trials in a fresh process: same study and MLflow content as in-process, pruning over a pipe."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from mnist_models.errors import TrialFailed
from sweeps.engine.runners import _serve
from sweeps.engine.session import SweepSettings
from sweeps.engine.sweep import run_sweep
from sweeps.spec.sweep_file import SweepConfig

SWEEP = {
    "sweep": {"trials": 3, "pruner": "none", "sampler": "random"},
    "fixed": {
        "epochs": 2,
        "batch_size": 64,
        "mlp": {"hidden_sizes": [32]},
        "data": {"train_size": 1500, "val_fraction": 0.2, "test_size": 500},
    },
    "space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
}


def _sweep(tmp_path: Path, mnist_dir: Path, sweep: dict, trial_process: bool) -> optuna.Study:
    settings = SweepSettings(
        study="iso",
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
        seed=5,
        data_dir=mnist_dir,
        trial_process=trial_process,
    )
    return run_sweep(SweepConfig.from_dict(sweep), settings)


@pytest.mark.slow  # minutes on two cores: CI runs it in its `pytest -m slow` pass
def test_trials_in_fresh_processes_match_in_process_trials(tmp_path: Path, mnist_dir: Path) -> None:
    isolated = _sweep(tmp_path / "a", mnist_dir, SWEEP, trial_process=True)
    in_process = _sweep(tmp_path / "b", mnist_dir, SWEEP, trial_process=False)
    assert [t.state for t in isolated.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    # Same seed, same params, same data: the numpy MLP gives the same numbers in either place.
    assert [t.params for t in isolated.trials] == [t.params for t in in_process.trials]
    assert [t.value for t in isolated.trials] == [t.value for t in in_process.trials]
    assert [t.intermediate_values for t in isolated.trials] == [
        t.intermediate_values for t in in_process.trials
    ]

    client = MlflowClient(f"sqlite:///{tmp_path / 'a' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("iso")
    runs = client.search_runs([experiment.experiment_id], "tags.`mnist_sweeps.role` = 'trial'")
    assert len(runs) == 3
    for run in runs:
        assert run.info.status == "FINISHED"
        history = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert [m.step for m in history] == [1, 2]
        assert "test_accuracy" in run.data.metrics


def test_pruning_reaches_a_trial_in_another_process(tmp_path: Path, mnist_dir: Path) -> None:
    # A pruner that stops every trial after its first reported epoch proves that the report
    # travels to the parent and the answer back to the training loop in the child.
    sweep = {**SWEEP, "sweep": {**SWEEP["sweep"], "trials": 1, "pruner": "median"}}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "sweeps.engine.session.make_pruner", lambda name: optuna.pruners.ThresholdPruner(1.01)
        )
        result = _sweep(tmp_path, mnist_dir, sweep, trial_process=True)
    (trial,) = result.trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(trial.user_attrs["mlflow_run_id"])
    assert run.info.status == "KILLED"
    assert run.data.tags["pruned_at_epoch"] == "1"


def test_a_worker_that_dies_fails_its_trial_with_the_exit_code() -> None:
    parent_end, child_end = multiprocessing.Pipe()
    child_end.close()

    class Dead:
        exitcode = -9

        def join(self) -> None:
            pass

    with pytest.raises(TrialFailed, match=r"died \(exit code -9\)"):
        _serve(optuna.trial.FixedTrial({}), parent_end, Dead())  # type: ignore[arg-type]
