"""The MLflow server goes away: trials keep their Optuna record, the incomplete runs are named."""

from __future__ import annotations

import re
import threading
import time
import warnings
from pathlib import Path

import optuna
import pytest
from helpers.cli import start_cli
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from optuna.trial import TrialState

from mnist_models.callbacks import EpochResult
from mnist_models.data import Splits
from tracking import Tracker, TrackingUnavailableWarning
from tracking.server import MlflowServer, free_port

pytestmark = pytest.mark.fault


def _epoch(epoch: int) -> EpochResult:
    return EpochResult(
        epoch=epoch,
        train_loss=0.5,
        train_accuracy=0.8,
        val_loss=0.4,
        val_accuracy=0.85,
        learning_rate=0.001,
        seconds=0.1,
    )


def test_a_transient_outage_is_ridden_out_by_retries_with_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "6")  # waits up to ~60 s in all
    port = free_port()
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    server = MlflowServer(backend, tmp_path / "artifacts", port=port).start()
    run = Tracker("outage", server.url).start_run("trial-000")
    server.stop()  # down ...
    restarted: list[MlflowServer] = []
    thread = threading.Thread(
        target=lambda: restarted.append(
            MlflowServer(backend, tmp_path / "artifacts", port=port).start()
        )
    )
    thread.start()  # ... and back within the retry window
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", TrackingUnavailableWarning)
            run.log_epoch(_epoch(1))
            run.end()
        assert run.failure is None
        history = MlflowClient(server.url).get_metric_history(run.id, "val_accuracy")
        assert [m.value for m in history] == [0.85]
        assert MlflowClient(server.url).get_run(run.id).info.status == "FINISHED"
    finally:
        thread.join(120)
        for again in restarted:
            again.stop()


def test_a_lasting_outage_warns_once_naming_the_run_and_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    server = MlflowServer(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts").start()
    tracker = Tracker("outage", server.url)
    run = tracker.start_run("trial-000")
    server.stop()
    with pytest.warns(TrackingUnavailableWarning) as caught:
        run.log_epoch(_epoch(1))
        started = time.monotonic()
        run.log_epoch(_epoch(2))  # skipped: no second wait for a server known to be gone
        run.set_tags({"optuna.state": "COMPLETE"})
        run.end()
        skipped_for = time.monotonic() - started
        lost = tracker.start_run("trial-001", keep_going=True)
    assert skipped_for < 0.5
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2, messages
    assert messages[0].startswith(f"MLflow run {run.run_id}: epoch 1: ")
    assert "training goes on" in messages[0]
    assert lost.run_id is None and "create_run" in (lost.failure or "")
    assert "'trial-001' not created" in messages[1]
    with pytest.raises(MlflowException):  # a run a command cannot do without fails loudly
        tracker.start_run("train")


@pytest.mark.slow  # minutes on two cores: CI runs it in its `pytest -m slow` pass
def test_the_server_dying_mid_sweep_costs_runs_not_trials(tmp_path: Path, mnist_dir: Path) -> None:
    server = MlflowServer(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts").start()
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    args = [
        *("sweep", "--model", "mlp", "--trials", "4", "--epochs", "4", "--study", "drop"),
        *("--storage", storage, "--tracking-uri", server.url, "--pruner", "none"),
        *("--set", "data.train_size=6000", "--set", "data.test_size=500"),
        *("--set", "mlp.hidden_sizes=[64]"),
    ]
    # One retry: each call to the dead server gives up in about a second.
    process = start_cli(args, tmp_path, mnist_dir, {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"})
    assert process.stdout is not None
    seen = []
    try:
        for line in process.stdout:
            seen.append(line)
            if re.match(r"trial-001 .* epoch 1/4", line):
                server.stop()  # while trial 1 trains, its run created
                break
        output, _ = process.communicate(timeout=600)
    finally:
        server.stop()
        process.kill()
    output = "".join(seen) + output
    assert process.returncode == 0, output
    study = optuna.load_study(study_name="drop", storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 4
    assert all(t.value is not None and 0.5 < t.value <= 1 for t in study.trials)
    lost = [t for t in study.trials if "mlflow_error" in t.user_attrs]
    assert [t.number for t in lost] == [1, 2, 3]
    cut = lost[0].user_attrs["mlflow_run_id"]  # created, then cut off mid-training
    assert f"MLflow run {cut} is incomplete" in output
    assert "MLflow run (not created) is incomplete" in output  # trials 2 and 3
    assert all("mlflow_run_id" not in t.user_attrs for t in lost[1:])
    assert "the trial's result is kept in Optuna" in output
    assert "Traceback" not in output
    # What was logged before the outage is intact once the server is back.
    with MlflowServer(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts") as again:
        client = MlflowClient(again.url)
        first = client.get_run(study.trials[0].user_attrs["mlflow_run_id"])
        assert first.info.status == "FINISHED"
        assert first.data.metrics["val_accuracy"] == study.trials[0].value
        epochs = client.get_metric_history(cut, "val_accuracy")
        assert len(epochs) < 4  # what trial 1 logged before the outage, and nothing after


@pytest.mark.slow  # minutes on two cores: CI runs it in its `pytest -m slow` pass
def test_a_sqlite_store_locked_beyond_its_wait_is_retried_not_given_up(tmp_path: Path) -> None:
    import sqlite3

    store = tmp_path / "mlflow.db"
    run = Tracker("locked", f"sqlite:///{store}").start_run("trial-000")
    holder = sqlite3.connect(store, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # another worker, descheduled mid-write

    def release() -> None:
        time.sleep(26)  # beyond the 20 s MLflow's SQLite store waits for a lock by itself
        holder.execute("COMMIT")

    thread = threading.Thread(target=release)
    thread.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", TrackingUnavailableWarning)
            run.log_epoch(_epoch(1))
    finally:
        thread.join()
        holder.close()
    assert run.failure is None
    history = MlflowClient(f"sqlite:///{store}").get_metric_history(run.id, "val_accuracy")
    assert [m.value for m in history] == [0.85]


def test_two_workers_logging_one_dataset_at_once_both_record_it(
    tmp_path: Path, small_splits: Splits
) -> None:
    """MLflow's SQL store looks a dataset up, then inserts it; the loser of that race gets a
    UNIQUE violation (seen with 4 workers on one SQLite store). Injected here at the moment
    the other worker wins: the retry must find the row, not give up the run's inputs."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker("race", store)
    first = tracker.start_run("trial-000")
    second = tracker.start_run("trial-001")
    real = second.client.log_inputs
    calls = []

    def lose_the_race_once(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            first.log_dataset(small_splits)  # the other worker's insert lands first
            raise MlflowException(
                "(sqlite3.IntegrityError) UNIQUE constraint failed: datasets.experiment_id, "
                "datasets.name, datasets.digest"
            )
        real(*args, **kwargs)

    second.client = MlflowClient(store)
    second.client.log_inputs = lose_the_race_once  # type: ignore[method-assign]
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrackingUnavailableWarning)
        second.log_dataset(small_splits)
    assert second.failure is None and len(calls) == 2
    client = MlflowClient(store)
    for run in (first, second):
        inputs = client.get_run(run.id).inputs.dataset_inputs
        assert sorted(i.dataset.name for i in inputs) == sorted(
            f"{small_splits.info.name}-{part}" for part in ("train", "validation", "test")
        )
