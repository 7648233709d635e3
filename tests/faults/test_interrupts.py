"""Ctrl-C and killed workers: the trial in flight ends cleanly, and resuming reaches N trials."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import optuna
import pytest
from helpers.checks import finish, runs_of, wait_for_a_trial_midway
from helpers.cli import start_cli
from optuna.trial import TrialState

from sweeps.store.keys import RETRY_OF_ATTR, SURPLUS_ATTR, WORKER_ATTR

pytestmark = pytest.mark.fault


def _args(work: Path, study: str, trials: int, epochs: int) -> list[str]:
    return [
        *("sweep", "--model", "mlp", "--study", study, "--trials", str(trials)),
        *("--storage", f"sqlite:///{work / 'optuna.db'}"),
        *("--tracking-uri", f"sqlite:///{work / 'mlflow.db'}"),
        *("--pruner", "none", "--train-size", "3000", "--epochs", str(epochs)),
        *("--set", "data.test_size=500", "--set", "mlp.hidden_sizes=[64]"),
    ]


def test_ctrl_c_ends_the_trial_cleanly_exits_130_and_resumes(
    tmp_path: Path, mnist_dir: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = _args(tmp_path, "intr", trials=3, epochs=30)
    process = start_cli(args, tmp_path, mnist_dir, interruptible=True)
    interrupted = wait_for_a_trial_midway(storage, "intr", process, after_complete=1, epochs=30)
    process.send_signal(signal.SIGINT)  # what Ctrl-C sends
    output = finish(process, code=130)
    assert "Traceback" not in output
    assert output.strip().splitlines()[-1] == "interrupted; re-run the same command to resume"

    trials = optuna.load_study(study_name="intr", storage=storage).trials
    assert trials[interrupted.number].state == TrialState.FAIL
    queued = [t for t in trials if t.state == TrialState.WAITING]
    assert len(queued) == 1, "its params are queued, to be tried first on resume"
    assert queued[0].system_attrs["fixed_params"] == interrupted.params
    runs = {r.info.run_id: r for r in runs_of(tmp_path, "intr")}
    cut = runs[interrupted.user_attrs["mlflow_run_id"]]
    assert cut.info.status == "KILLED"
    assert cut.data.tags["failure_reason"] == "interrupted"
    parent = next(r for r in runs.values() if r.data.tags.get("mnist_sweeps.role") == "study")
    assert parent.info.status == "KILLED"
    assert all(r.info.status != "RUNNING" for r in runs.values())
    finished = {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}

    resumed = finish(start_cli(args, tmp_path, mnist_dir))
    assert "Traceback" not in resumed
    trials = optuna.load_study(study_name="intr", storage=storage).trials
    assert [t for t in trials if t.state == TrialState.COMPLETE].__len__() == 3
    assert all(trials[n].value == v for n, v in finished.items()), "finished work was changed"
    assert trials[queued[0].number].state == TrialState.COMPLETE
    assert trials[queued[0].number].params == interrupted.params
    runs_after = runs_of(tmp_path, "intr")
    assert all(r.info.status != "RUNNING" for r in runs_after)
    assert len([r for r in runs_after if r.data.tags.get("mnist_sweeps.role") == "study"]) == 1


@pytest.mark.slow  # minutes on two cores: CI runs it in its `pytest -m slow` pass
def test_a_worker_killed_mid_trial_is_failed_retried_and_the_study_completes(
    tmp_path: Path, mnist_dir: Path
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = [*_args(tmp_path, "wkill", trials=4, epochs=40), "--workers", "2"]
    process = start_cli(args, tmp_path, mnist_dir)
    victim = wait_for_a_trial_midway(storage, "wkill", process, after_complete=1, epochs=40)
    pid = int(victim.user_attrs[WORKER_ATTR].rsplit(":", 1)[1])
    assert pid != process.pid, "the trial ran in a worker process"
    finished_before = {
        t.number: t.value
        for t in optuna.load_study(study_name="wkill", storage=storage).trials
        if t.state == TrialState.COMPLETE
    }
    os.kill(pid, signal.SIGKILL)
    output = finish(process, code=1)  # the sweep says a worker died and how to resume
    assert "exited with code -9; re-run the same command to resume" in output
    # The trial the worker was on when it died: the one seen midway may have just finished,
    # and the worker started the next.
    (victim,) = [
        t
        for t in optuna.load_study(study_name="wkill", storage=storage).trials
        if t.state in (TrialState.RUNNING, TrialState.FAIL)
        and t.user_attrs.get(WORKER_ATTR) == victim.user_attrs[WORKER_ATTR]
    ]

    finish(start_cli(args, tmp_path, mnist_dir))  # resume
    trials = optuna.load_study(study_name="wkill", storage=storage).trials
    assert len({t.number for t in trials}) == len(trials)
    assert len([t for t in trials if t.state == TrialState.COMPLETE]) == 4
    assert all(trials[n].value == v for n, v in finished_before.items())
    assert trials[victim.number].state == TrialState.FAIL
    retries = [t for t in trials if t.user_attrs.get(RETRY_OF_ATTR) == victim.number]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == victim.params
    runs = runs_of(tmp_path, "wkill")
    assert all(r.info.status != "RUNNING" for r in runs)
    dead = next(r for r in runs if r.info.run_id == victim.user_attrs["mlflow_run_id"])
    assert dead.info.status == "FAILED"
    assert len([r for r in runs if r.data.tags.get("mnist_sweeps.role") == "study"]) == 1
    # A worker that asks once the budget is met fails that trial as surplus, with no run.
    tried = [t for t in trials if not t.user_attrs.get(SURPLUS_ATTR)]
    assert len([r for r in runs if r.data.tags.get("mnist_sweeps.role") == "trial"]) == len(tried)
