"""A sweep killed with SIGKILL in the middle of a trial resumes with nothing lost or orphaned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from sweeps.engine.recovery import DeadTrialHandler, fail_dead_local_trials, worker_id
from sweeps.store.storage import open_storage

pytestmark = pytest.mark.fault  # issue 7's fault suite: SIGKILL of a single-process sweep


def _sweep_args(work: Path, trials: int) -> list[str]:
    return [
        "sweep",
        "--model",
        "mlp",
        "--study",
        "crash",
        "--storage",
        f"sqlite:///{work / 'optuna.db'}",
        "--tracking-uri",
        f"sqlite:///{work / 'mlflow.db'}",
        "--trials",
        str(trials),
        "--pruner",
        "none",
        "--train-size",
        "3000",
        "--epochs",
        "40",  # long enough that the kill lands inside the second trial
        "--set",
        "data.test_size=500",
        "--set",
        "mlp.hidden_sizes=[64]",
    ]


def _wait_for_second_trial_running(storage: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            trials = optuna.load_study(study_name="crash", storage=storage).trials
        except KeyError:
            trials = []
        running = [t for t in trials if t.state == TrialState.RUNNING]
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        if complete and running and len(running[0].intermediate_values) >= 2:
            return
        time.sleep(0.3)
    raise AssertionError("the sweep never reached the middle of its second trial")


@pytest.mark.slow  # minutes on two cores: CI runs it in its `pytest -m slow` pass
def test_sigkill_during_a_trial_then_resume(tmp_path: Path, mnist_dir: Path) -> None:
    env = {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "sweeps.cli", *_sweep_args(tmp_path, trials=3)]
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    process = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        _wait_for_second_trial_running(storage, process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    before = optuna.load_study(study_name="crash", storage=storage).trials
    killed = next(t for t in before if t.state == TrialState.RUNNING)
    finished_before = {t.number: t.value for t in before if t.state == TrialState.COMPLETE}

    resumed = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"trial {killed.number}: worker" in resumed.stdout + resumed.stderr

    trials = optuna.load_study(study_name="crash", storage=storage).trials
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3, "--trials 3 means three finished trials in total"
    for number, value in finished_before.items():
        assert trials[number].value == value, "a finished trial was lost or changed"
    assert trials[killed.number].state == TrialState.FAIL
    retry = next(t for t in trials if t.user_attrs.get("retry_of") == killed.number)
    assert retry.state == TrialState.COMPLETE
    assert retry.params == killed.params

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("crash")
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.status for r in runs if r.info.status == "RUNNING"] == []
    parents = [r for r in runs if r.data.tags.get("mnist_sweeps.role") == "study"]
    assert len(parents) == 1, "the parent run is reused, not duplicated"
    children = [r for r in runs if r.data.tags.get("mnist_sweeps.role") == "trial"]
    assert len(children) == len(trials) == 4
    dead_run = client.get_run(killed.user_attrs["mlflow_run_id"])
    assert dead_run.info.status == "FAILED"
    assert dead_run.data.tags["optuna.state"] == "FAIL"
    assert "stopped during the trial" in dead_run.data.tags["failure_reason"]
    retry_run = client.get_run(retry.user_attrs["mlflow_run_id"])
    assert retry_run.data.tags["optuna.retry_of"] == str(killed.number)


def test_a_running_trial_of_a_live_worker_is_left_alone(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(study_name="live", storage=storage)
    live = study.ask()
    live.set_user_attr("worker", worker_id())
    other_host = study.ask()
    other_host.set_user_attr("worker", "some-other-host:1")
    dead = study.ask()
    dead.set_user_attr("worker", f"{worker_id().rsplit(':', 1)[0]}:999999999")
    dead.suggest_float("lr", 0.1, 1.0)

    failed = fail_dead_local_trials(study, storage, DeadTrialHandler(max_retry=1))
    assert failed == [dead.number]
    states = {t.number: t.state for t in study.trials}
    assert states[live.number] == states[other_host.number] == TrialState.RUNNING
    assert states[dead.number] == TrialState.FAIL
    (waiting,) = [t for t in study.trials if t.state == TrialState.WAITING]
    assert waiting.user_attrs == {"retry_of": dead.number, "retry_count": 1}


def test_a_dead_trial_whose_run_was_already_closed_fails_in_mlflow_too(tmp_path: Path) -> None:
    """Died after closing its MLflow run, before Optuna stored the value: FAIL in both."""
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    study = optuna.create_study(study_name="late", storage=storage)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment("late")
    runs = {status: client.create_run(experiment_id).info.run_id for status in ("F", "K")}
    client.set_terminated(runs["F"], status="FINISHED")
    client.set_terminated(runs["K"], status="KILLED")
    host = worker_id().rsplit(":", 1)[0]
    for run_id in runs.values():
        dead = study.ask()
        dead.set_user_attr("worker", f"{host}:999999999")
        dead.set_user_attr("mlflow_run_id", run_id)

    assert len(fail_dead_local_trials(study, storage, DeadTrialHandler(client))) == 2
    finished, killed = (client.get_run(runs[s]) for s in ("F", "K"))
    assert finished.info.status == "FAILED" and finished.data.tags["optuna.state"] == "FAIL"
    assert killed.info.status == "KILLED", "an interrupt stays an interrupt"
