"""``sweep``: prepare a study, then run its trials here or in K worker processes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import optuna

from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from mnist_models.data.cache import SplitsCache
from mnist_models.errors import ConfigError
from sweeps.console import console
from sweeps.engine import session
from sweeps.engine.recovery import DeadTrialHandler, fail_dead_local_trials
from sweeps.engine.session import (
    FINISHED,
    SweepSettings,
    load_or_create_study,
    parent_run,
    remember_tracking,
)
from sweeps.engine.workers import run_worker_processes
from sweeps.results.summary import finish
from sweeps.spec.sweep_file import SweepConfig
from sweeps.store.keys import TARGET_ATTR
from sweeps.store.storage import default_storage, open_storage, redact_url, storage_kind
from tracking import Tracker
from tracking.runs import check_server


def run_sweep(
    sweep: SweepConfig,
    settings: SweepSettings,
    splits_for: Callable[[TrainConfig], Splits] | None = None,
) -> optuna.Study:
    """Runs trials until the study holds ``trials`` finished (complete or pruned) trials.

    Re-running the same command resumes: finished trials are kept and only the missing ones
    run; a trial whose worker died is failed and re-run with the same params. Failed trials
    (``TrialFailed``) are recorded and do not stop the sweep. With ``settings.workers > 1``
    this process prepares the study and K worker processes share its trials.
    """
    if settings.workers < 1:
        raise ConfigError(f"--workers {settings.workers}: expected >= 1")
    storage = settings.storage or default_storage()
    storage_kind(storage)  # a bad URL is refused before anything is loaded or written
    check_server(settings.tracking_uri or "")  # an unreachable server fails in seconds
    splits_for = splits_for or SplitsCache(settings.data_dir)
    splits_for(sweep.base)  # missing or corrupt data, or a too-large slice, fails before any record
    dead_trials = DeadTrialHandler()
    optuna_storage = open_storage(storage, dead_trials)  # a bad database fails before MLflow writes
    tracker = Tracker(settings.experiment or settings.study, settings.tracking_uri)
    dead_trials.client = tracker.client
    settings = dataclasses.replace(settings, storage=storage)
    study = load_or_create_study(sweep, settings, optuna_storage)
    target = settings.trials or sweep.trials
    study.set_user_attr(TARGET_ATTR, target)  # what a joining `worker` aims for
    remember_tracking(study, tracker.tracking_uri, tracker.experiment_name)
    parent_id = parent_run(tracker, study, sweep, storage)
    # A trial left RUNNING by a killed earlier run of this command: fail and re-queue it now.
    fail_dead_local_trials(study, optuna_storage, dead_trials)
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    console.print(
        f"study [bold]{study.study_name}[/] in {redact_url(storage)}: {done} of {target} "
        f"trials finished; MLflow experiment '{tracker.experiment_name}' at "
        f"{redact_url(tracker.tracking_uri)}"
    )
    status = "FAILED"
    try:
        if settings.workers == 1:
            session.work(
                study, optuna_storage, dead_trials, sweep, settings, tracker, parent_id, splits_for
            )
        else:
            run_worker_processes(settings, tracker.tracking_uri, tracker.experiment_name)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        finish(tracker, parent_id, study, status)
    return study
