"""Trials whose worker died: found, marked FAIL in Optuna and MLflow, and re-run.

Two detectors feed one handler:

* **Dead local workers.** Every trial records ``worker = host:pid`` of the process that runs
  it. A RUNNING trial of this host whose process no longer exists died with it (SIGKILL, OOM,
  power cut); it is failed at once when a sweep on this host starts or finishes a trial, so a
  re-run of the killed command resumes immediately. Works with every storage.
* **Heartbeats** (RDB storages: SQLite, PostgreSQL, MySQL). Optuna's heartbeat thread stamps
  running trials; a trial silent for longer than the grace period is failed by whichever
  worker starts its next trial, on any host (interval and grace period:
  :data:`sweeps.store.storage.HEARTBEAT_INTERVAL_S`, :data:`sweeps.store.storage.GRACE_PERIOD_S`).

The handler then ends the trial's MLflow run as FAILED (never left RUNNING forever) and
enqueues a retry of the same params (like Optuna's ``RetryFailedTrialCallback``, but the
retry starts clean: it inherits none of the dead trial's user attributes except the link).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import optuna
from mlflow import MlflowClient
from optuna.storages import BaseStorage
from optuna.trial import FrozenTrial, TrialState

from sweeps.console import console
from sweeps.store.keys import RETRY_COUNT_ATTR, RETRY_OF_ATTR, RUN_ID_ATTR, STATE_TAG, WORKER_ATTR
from tracking.tags import FAILURE_TAG

MAX_RETRY = 2  # a trial that kills its worker three times is not retried again


def worker_id() -> str:
    """``host:pid`` of this process, recorded on each trial it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


class DeadTrialHandler:
    """Ends a dead trial's MLflow run as FAILED and enqueues a retry with the same params.

    Called by Optuna (as the RDB storage's ``heartbeat_stale_trial_callback``) or by
    :func:`fail_dead_local_trials`, with the trial already in state FAIL.

    Args:
        client: The MLflow client of the sweep's tracking store (set before trials run).
        max_retry: How many times one trial's params are retried.
    """

    def __init__(self, client: MlflowClient | None = None, max_retry: int = MAX_RETRY) -> None:
        if max_retry < 0:
            raise ValueError(f"{max_retry=} must be >= 0")
        self.client = client
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        reason = f"worker {trial.user_attrs.get(WORKER_ATTR, '?')} stopped during the trial"
        console.print(f"[yellow]trial {trial.number}: {reason}; marked failed, will re-run[/]")
        run_id = trial.user_attrs.get(RUN_ID_ATTR)
        if run_id and self.client is not None:
            try:
                run = self.client.get_run(run_id)
                # FINISHED too: the worker died (or lost its storage) after closing the run but
                # before Optuna heard the value, so the trial failed and its params re-run. A
                # KILLED run was an interrupt and keeps saying so.
                if run.info.status in ("RUNNING", "FINISHED"):
                    self.client.set_tag(run_id, STATE_TAG, "FAIL")
                    self.client.set_tag(run_id, FAILURE_TAG, reason)
                    self.client.set_terminated(run_id, status="FAILED")
            except Exception as exc:  # a missing run must not stop the recovery of the trial
                console.print(f"[red]could not close MLflow run {run_id}: {exc}[/]")
        requeue(study, trial.number, trial.params, trial.user_attrs, max_retry=self.max_retry)


def requeue(
    study: optuna.Study,
    number: int,
    params: dict[str, Any],
    user_attrs: dict[str, Any],
    count_as_retry: bool = True,
    max_retry: int = MAX_RETRY,
) -> bool:
    """Enqueues trial ``number``'s params to run next; False once it was retried too often."""
    count = int(user_attrs.get(RETRY_COUNT_ATTR, 0)) + int(count_as_retry)
    if count > max_retry:
        console.print(f"[red]trial {number}: not retried again (failed {count} times)[/]")
        return False
    study.enqueue_trial(params, user_attrs={RETRY_OF_ATTR: number, RETRY_COUNT_ATTR: count})
    return True


def fail_dead_local_trials(
    study: optuna.Study, storage: BaseStorage, handler: DeadTrialHandler
) -> list[int]:
    """Fails RUNNING trials whose worker process on this host is gone; returns their numbers."""
    host = socket.gethostname()
    failed = []
    study_id: int | None = None
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(trial.user_attrs.get(WORKER_ATTR, ""))
        worker_host, _, pid = worker.rpartition(":")
        if worker_host != host or not pid.isdigit() or _alive(int(pid)):
            continue
        # A FrozenTrial's storage id is private; the storage maps its number to the id.
        # (Not study.tell: outside optimize() it would run the sampler's after_trial.)
        if study_id is None:
            study_id = storage.get_study_id_from_name(study.study_name)
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                continue
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        handler(study, storage.get_trial(trial_id))
        failed.append(trial.number)
    return failed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if Path("/proc").is_dir():
        return Path(f"/proc/{pid}").exists()
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
