"""Checks shared by the multi-worker and fault tests: a study holds exactly what it should."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import optuna
from mlflow import MlflowClient
from mlflow.entities import Run
from optuna.trial import FrozenTrial, TrialState

from sweeps.store.keys import SURPLUS_ATTR


def finish(process: subprocess.Popen[str], code: int = 0) -> str:
    """Waits for a command started with ``start_cli``; asserts its exit code, returns output."""
    output, _ = process.communicate(timeout=600)
    assert process.returncode == code, output
    return output


def assert_exactly(
    n: int, study: optuna.Study, tracking_uri: str
) -> list[optuna.trial.FrozenTrial]:
    """``n`` COMPLETE trials with unique numbers, one FINISHED MLflow child each, one parent.

    Surplus trials (a race between workers, ended before training) do not count.
    """
    trials = study.trials
    assert len({t.number for t in trials}) == len(trials), "duplicate trial numbers"
    real = [t for t in trials if not t.user_attrs.get(SURPLUS_ATTR)]
    assert [t.state for t in real] == [TrialState.COMPLETE] * n, [t.state for t in trials]
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(study.study_name)
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "tags.`mnist_sweeps.role` = 'trial'")
    by_trial: dict[str, list[str]] = {}
    for run in runs:
        by_trial.setdefault(run.data.tags["optuna.trial"], []).append(run.info.status)
    expected = {str(t.number): ["FINISHED"] for t in real}
    errors = {
        t.number: t.user_attrs["mlflow_error"] for t in real if "mlflow_error" in t.user_attrs
    }
    assert by_trial == expected, f"one MLflow child per trial: {by_trial}; tracking: {errors}"
    parents = client.search_runs([experiment.experiment_id], "tags.`mnist_sweeps.role` = 'study'")
    assert len(parents) == 1
    return real


def wait_for_a_trial_midway(
    storage: str, study: str, process: subprocess.Popen[str], after_complete: int, epochs: int
) -> FrozenTrial:
    """A RUNNING trial with 2 to ``epochs - 4`` epochs reported (so it is not about to end),
    once ``after_complete`` trials have finished."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            trials = optuna.load_study(study_name=study, storage=storage).trials
        except KeyError:
            trials = []
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        midway = [
            t
            for t in trials
            if t.state == TrialState.RUNNING and 2 <= len(t.intermediate_values) <= epochs - 4
        ]
        if len(complete) >= after_complete and midway:
            return min(midway, key=lambda t: len(t.intermediate_values))  # farthest from done
        time.sleep(0.2)
    raise AssertionError("no trial reached its middle")


def runs_of(work: Path, experiment: str) -> list[Run]:
    """Every MLflow run of ``experiment`` in ``work/mlflow.db``."""
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    return client.search_runs([found.experiment_id])
