"""run_sweep in-process: failed trials are recorded and the sweep goes on; budgets count."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient

from mnist_models.data import Splits
from sweeps.engine.session import SweepSettings
from sweeps.engine.sweep import run_sweep
from sweeps.spec.sweep_file import SweepConfig

DIVERGING = {
    "sweep": {"trials": 2, "pruner": "none"},
    "fixed": {
        "epochs": 2,
        "lr": 1e6,
        "batch_size": 64,
        "mlp": {"hidden_sizes": [16], "optimizer": "sgd", "loss": "mse"},
    },
    "space": {"dropout": {"type": "float", "low": 0.0, "high": 0.2}},
}


@pytest.mark.fault
def test_a_diverging_trial_fails_alone_and_is_visible_in_mlflow(
    tmp_path: Path, small_splits: Splits
) -> None:
    sweep = SweepConfig.from_dict(DIVERGING)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = SweepSettings(
        study="div",
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        tracking_uri=store,
        trials=2,
        seed=3,
    )
    study = run_sweep(sweep, settings, splits_for=lambda config: small_splits)
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(failed) == len(study.trials) == 2, "the first failure must not stop the sweep"
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("div")
    runs = client.search_runs([experiment.experiment_id])
    trial_runs = {r.data.tags.get("optuna.trial"): r for r in runs if "optuna.trial" in r.data.tags}
    assert len(trial_runs) == len(study.trials)
    for trial in failed:
        run = trial_runs[str(trial.number)]
        assert run.info.status == "FAILED"
        assert run.data.tags["optuna.state"] == "FAIL"
        assert run.data.tags["failure_reason"].startswith("diverged at epoch 1")
    assert all(r.info.status != "RUNNING" for r in runs)
    parent = next(r for r in runs if r.data.tags.get("mnist_sweeps.role") == "study")
    assert parent.data.tags.get("trials.fail") == str(len(failed))
