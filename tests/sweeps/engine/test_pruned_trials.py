"""Pruned trials: visibly pruned in MLflow, and finished trials of the study's budget."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from mnist_models.data import Splits
from sweeps.engine.budget import SurplusTrial, TrialBudget
from sweeps.engine.objective import Objective
from sweeps.engine.runners import InProcessRunner
from sweeps.engine.session import SweepSettings, parent_run
from sweeps.engine.sweep import run_sweep
from sweeps.spec.sweep_file import SweepConfig
from tracking import Tracker

SWEEP = {
    "sweep": {"trials": 3, "pruner": "none", "sampler": "random"},
    "fixed": {"epochs": 3, "batch_size": 64, "mlp": {"hidden_sizes": [16]}},
    "space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
}
LR = {"lr": FloatDistribution(1e-3, 1e-2, log=True)}


@pytest.fixture
def stores(tmp_path: Path) -> tuple[str, str]:
    """(Optuna storage, MLflow tracking URI), both SQLite files in the test's folder."""
    return f"sqlite:///{tmp_path / 'optuna.db'}", f"sqlite:///{tmp_path / 'mlflow.db'}"


def _trial_runs(store: str, experiment: str) -> dict[int, Run]:
    client = MlflowClient(store)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id], "tags.`mnist_sweeps.role` = 'trial'")
    return {int(run.data.tags["optuna.trial"]): run for run in runs}


def test_a_pruned_trial_ends_its_run_killed_and_tagged_pruned(
    stores: tuple[str, str], small_splits: Splits
) -> None:
    storage, store = stores
    sweep = SweepConfig.from_dict(SWEEP)
    # No accuracy reaches 2: the pruner stops every trial at its first reported epoch.
    study = optuna.create_study(
        study_name="pruned",
        storage=storage,
        direction="maximize",
        pruner=optuna.pruners.ThresholdPruner(lower=2.0),
    )
    tracker = Tracker("pruned", store)
    parent = parent_run(tracker, study, sweep, storage)
    runner = InProcessRunner(lambda config: small_splits)
    objective = Objective(sweep, runner, tracker, parent, "pruned", TrialBudget(2))
    study.optimize(objective, n_trials=2)

    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    runs = _trial_runs(store, "pruned")
    client = MlflowClient(store)
    for trial in study.trials:
        assert list(trial.intermediate_values) == [1]
        assert trial.user_attrs["epochs_trained"] == 1  # training stopped at once
        run = runs[trial.number]
        assert run.info.run_id == trial.user_attrs["mlflow_run_id"]
        assert run.info.status == "KILLED"
        assert run.data.tags["optuna.state"] == "PRUNED"
        assert run.data.tags["pruned_at_epoch"] == "1"
        assert run.data.tags["mlflow.parentRunId"] == parent
        (epoch,) = client.get_metric_history(run.info.run_id, "val_accuracy")
        assert (epoch.step, epoch.value) == (1, pytest.approx(trial.intermediate_values[1]))
        assert "test_accuracy" in run.data.metrics  # a pruned trial is still scored


def test_pruned_trials_count_toward_the_trial_budget_on_resume(
    stores: tuple[str, str], small_splits: Splits
) -> None:
    storage, store = stores
    study = optuna.create_study(study_name="budget", storage=storage, direction="maximize")
    for lr in (0.002, 0.004):
        study.add_trial(
            create_trial(
                state=TrialState.PRUNED,
                params={"lr": lr},
                distributions=LR,
                intermediate_values={1: 0.5},
            )
        )
    sweep = SweepConfig.from_dict(SWEEP)

    def resume(trials: int) -> optuna.Study:
        settings = SweepSettings(study="budget", storage=storage, tracking_uri=store, trials=trials)
        return run_sweep(sweep, settings, splits_for=lambda config: small_splits)

    # --trials 3 means three finished trials: the two pruned ones count, one more runs.
    states = [t.state for t in resume(3).trials]
    assert states == [TrialState.PRUNED, TrialState.PRUNED, TrialState.COMPLETE]
    assert sorted(_trial_runs(store, "budget")) == [2]
    assert len(resume(3).trials) == 3  # the same command again: nothing left to run

    budget = TrialBudget(3)
    assert budget.taken(study) == 3 and budget.remaining(study) == 0
    with pytest.raises(SurplusTrial):
        budget.check(study.ask())  # a fourth trial is surplus, pruned ones included
