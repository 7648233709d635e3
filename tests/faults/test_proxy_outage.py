"""The storage proxy killed mid-sweep and restarted: one line per worker, nothing finished lost.

Two `worker` processes (two hosts, in effect) share a PostgreSQL study through the proxy. The
proxy is SIGKILLed while both train, then started again on the same port. Each worker must
end with one plain line saying what happened and what to do (no gRPC traceback); every trial
that had finished must still be there with its value; and running the worker again must
finish the budget, re-running the trials the outage cut short.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from helpers.checks import finish
from helpers.cli import cli_command, cli_env, run_cli, start_storage_proxy
from mlflow import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from sweeps.store.keys import RETRY_OF_ATTR, RUN_ID_ATTR, SURPLUS_ATTR
from tracking.server import free_port
from tracking.tags import FAILURE_TAG

pytestmark = pytest.mark.fault

EPOCHS = 4
TARGET = 8
TRIAL = [
    *("--model", "mlp", "--pruner", "none", "--train-size", "10000", "--epochs", str(EPOCHS)),
    *("--set", "data.test_size=500", "--set", "mlp.hidden_sizes=[256]", "--set", "augment=false"),
]


def _both_workers_midway(study: optuna.Study) -> dict[int, float] | None:
    """The values of the complete trials, once at least 3 are complete and two trials are in
    the middle of training (an epoch or more done, two or more to go), else None."""
    trials = study.get_trials(deepcopy=False)
    complete = {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}
    running = [t for t in trials if t.state == TrialState.RUNNING]
    midway = [t for t in running if 1 <= len(t.intermediate_values) <= EPOCHS - 2]
    if len(complete) >= 3 and len(running) == 2 == len(midway):
        return {n: v for n, v in complete.items() if v is not None}
    return None


@pytest.mark.slow  # about a minute on two cores: CI runs it in its `pytest -m slow` pass
def test_a_killed_proxy_costs_only_the_running_trials_and_a_rerun_finishes(
    tmp_path: Path, mnist_dir: Path, pg_storage: str
) -> None:
    port = free_port()
    url = f"grpc://127.0.0.1:{port}"
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proxy = start_storage_proxy(pg_storage, port, tmp_path, mnist_dir)
    workers: list[subprocess.Popen[str]] = []
    try:
        args = ["--study", "px", "--storage", url]
        created = run_cli(
            ["sweep", *args, "--tracking-uri", tracking, "--trials", "1", *TRIAL],
            tmp_path,
            mnist_dir,
        )
        assert created.returncode == 0, created.stdout + created.stderr
        logs = [tmp_path / f"worker-{i}.log" for i in range(2)]
        for log in logs:
            with open(log, "w") as out:  # a file, not a pipe nobody reads while they train
                workers.append(
                    subprocess.Popen(
                        cli_command(["worker", *args, "--trials", str(TARGET)]),
                        cwd=tmp_path,
                        env=cli_env(mnist_dir),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        text=True,
                    )
                )
        study = optuna.load_study(study_name="px", storage=optuna.storages.RDBStorage(pg_storage))
        deadline = time.monotonic() + 240
        while (done := _both_workers_midway(study)) is None:
            assert time.monotonic() < deadline, "the workers never trained side by side"
            assert all(w.poll() is None for w in workers), [log.read_text() for log in logs]
            time.sleep(0.05)
        proxy.kill()
        proxy.wait()

        for worker, log in zip(workers, logs, strict=True):
            assert worker.wait(timeout=120) == 1, log.read_text()
            output = log.read_text()
            assert "Traceback" not in output, output
            errors = [line for line in output.splitlines() if line.startswith("mnist-sweep:")]
            assert errors == [
                f"mnist-sweep: error: --storage '{url}': the storage proxy stopped answering "
                "(gRPC UNAVAILABLE); trials finished so far are kept in its database; re-run "
                "the same command once the proxy is back to finish the budget"
            ], output
        # Nothing was written after the kill: the database holds what the workers had finished.
        after_kill = study.get_trials(deepcopy=False)
        assert {t.number: t.value for t in after_kill if t.state == TrialState.COMPLETE} == done
        cut_short = {t.number for t in after_kill if t.state == TrialState.RUNNING}
        assert len(cut_short) == 2

        proxy = start_storage_proxy(pg_storage, port, tmp_path, mnist_dir)  # same port, same URL
        rerun = run_cli(["worker", *args, "--trials", str(TARGET)], tmp_path, mnist_dir)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
        proxy.send_signal(signal.SIGTERM)
        finish(proxy, code=128 + signal.SIGTERM)

    trials = [t for t in study.get_trials() if not t.user_attrs.get(SURPLUS_ATTR)]
    by_number = {t.number: t for t in trials}
    for number, value in done.items():  # every finished trial kept, value and all
        assert by_number[number].state == TrialState.COMPLETE
        assert by_number[number].value == value
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == TARGET, [t.state for t in trials]
    assert {t.number for t in trials if t.state == TrialState.FAIL} == cut_short
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    # Each cut-short trial's params ran again, as a retry that links back to it.
    retries = {t.user_attrs.get(RETRY_OF_ATTR): t for t in complete}
    for number in cut_short:
        assert retries[number].params == by_number[number].params
    _assert_runs(tracking, complete, [by_number[n] for n in cut_short])


def _assert_runs(tracking: str, complete: list[FrozenTrial], failed: list[FrozenTrial]) -> None:
    """One FINISHED MLflow run per complete trial, a FAILED one per cut-short trial."""
    client = MlflowClient(tracking)
    for trial in complete:
        assert client.get_run(trial.user_attrs[RUN_ID_ATTR]).info.status == "FINISHED"
    for trial in failed:
        run = client.get_run(trial.user_attrs[RUN_ID_ATTR])
        assert run.info.status == "FAILED", run.data.tags
        assert run.data.tags[FAILURE_TAG]
    experiment = client.get_experiment_by_name("px")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id], "tags.`mnist_sweeps.role` = 'trial'")
    assert len(runs) == len(complete) + len(failed), "no run lost or doubled"
