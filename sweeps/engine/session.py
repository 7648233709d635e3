"""Running a study: storage, sampler, pruner, the MLflow parent run, and the trial budget."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from mnist_models.errors import ConfigError, TrialFailed
from sweeps.engine.budget import TrialBudget
from sweeps.engine.objective import Objective
from sweeps.engine.progress import SweepProgress
from sweeps.engine.pruning import make_pruner
from sweeps.engine.recovery import DeadTrialHandler, fail_dead_local_trials
from sweeps.engine.runners import InProcessRunner, SubprocessRunner, TrialRunner
from sweeps.engine.samplers import grid_trials_left, make_sampler
from sweeps.engine.signals import stop_pending, stops_held
from sweeps.spec.sweep_file import OBJECTIVE, SweepConfig
from sweeps.store.keys import (
    CONFIG_ATTR,
    OBJECTIVE_ATTR,
    SAMPLER_ATTR,
    SAMPLER_TAG,
    STORAGE_TAG,
    TARGET_ATTR,
    TRACKING_ATTR,
    parent_run_tags,
)
from sweeps.store.storage import open_storage, redact_url
from tracking import RunLogger, Tracker
from tracking.views import save_sweep_view

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
# What a study searches; the trial budget, sampler and pruner may change between runs.
SEARCH_DEFINING = ("fixed", "space")


@dataclass(frozen=True)
class SweepSettings:
    """Where and how long to run a study (everything not stored with the study itself)."""

    study: str
    storage: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None
    trials: int | None = None
    timeout: float | None = None
    seed: int = 0
    data_dir: str | Path | None = None
    trial_process: bool = False
    workers: int = 1


def load_or_create_study(
    sweep: SweepConfig, settings: SweepSettings, storage: optuna.storages.BaseStorage | None = None
) -> optuna.Study:
    """Creates the study, or loads it if it exists and searched the same config.

    Raises:
        ConfigError: If an existing study of that name was created from another config.
    """
    storage = storage or open_storage(settings.storage)
    study = optuna.create_study(
        study_name=settings.study,
        storage=storage,
        sampler=make_sampler(sweep.sampler, settings.seed, sweep.space),
        pruner=make_pruner(sweep.pruner),
        direction="maximize",
        load_if_exists=True,
    )
    stored = study.user_attrs.get(CONFIG_ATTR)
    wanted = json.loads(json.dumps(sweep.to_dict()))
    if stored is None:
        study.set_user_attr(CONFIG_ATTR, wanted)
        study.set_user_attr(OBJECTIVE_ATTR, OBJECTIVE)
    elif any(stored.get(part) != wanted[part] for part in SEARCH_DEFINING):
        raise ConfigError(
            f"--study {settings.study!r}: this study exists in "
            f"{redact_url(settings.storage)!r} with a different config; "
            "use a new --study name, or the same config and flags to resume it"
        )
    else:
        # Values over other repeats (other seeds, another noise level) are not comparable.
        searched = stored.get("sweep", {}).get("repeats", 1)
        if searched != sweep.repeats:
            raise ConfigError(
                f"--repeats {sweep.repeats}: study {settings.study!r} was searched with "
                f"--repeats {searched}; use --repeats {searched} to resume it, or a new --study"
            )
    study.set_user_attr(SAMPLER_ATTR, sweep.sampler)  # may change on resume; workers follow
    return study


def parent_run(tracker: Tracker, study: optuna.Study, sweep: SweepConfig, storage: str) -> str:
    """The study's single parent run: found again (and RUNNING again) on resume, created
    otherwise."""
    tags = parent_run_tags(study.study_name)
    existing = tracker.find_runs(tags)
    if existing:
        run_id = tracker.resume_run(existing[0]).id
    else:
        run_id = _new_parent_run(tracker, study, sweep, storage, tags)
    # A tag, not only the creation-time param: a resumed study may search with another sampler.
    RunLogger(tracker.client, run_id).set_tags({SAMPLER_TAG: sweep.sampler})
    save_sweep_view(tracker.client, tracker.experiment_id, sweep.space.to_dict())
    return run_id


def _new_parent_run(
    tracker: Tracker, study: optuna.Study, sweep: SweepConfig, storage: str, tags: dict[str, str]
) -> str:
    run = tracker.start_run(f"study-{study.study_name}", tags=tags)
    run.log_params(
        {
            "study": study.study_name,
            "storage": redact_url(storage),
            "sampler": _optuna_name(study.sampler),
            "pruner": type(study.pruner).__name__,
            "objective": f"maximize {OBJECTIVE}",
            **{f"space.{k}": json.dumps(v) for k, v in sweep.space.to_dict().items()},
        }
    )
    run.set_tags({STORAGE_TAG: redact_url(storage)})
    run.client.log_dict(run.id, sweep.to_dict(), "sweep_config.json")
    return run.id


def _optuna_name(sampler: optuna.samplers.BaseSampler) -> str:
    """``TPESampler``, ``GridSampler``, ...: the Optuna sampler that draws the params."""
    return getattr(sampler, "optuna_name", type(sampler).__name__)


def work(
    study: optuna.Study,
    storage: optuna.storages.BaseStorage,
    dead_trials: DeadTrialHandler,
    sweep: SweepConfig,
    settings: SweepSettings,
    tracker: Tracker,
    parent_id: str,
    splits_for: Callable[[TrainConfig], Splits],
    show_progress: bool = True,
) -> None:
    """One worker's trial loop: runs trials until the study's budget is taken."""
    budget = TrialBudget(settings.trials or study.user_attrs.get(TARGET_ATTR) or sweep.trials)
    runner: TrialRunner = (
        SubprocessRunner(settings.data_dir)
        if settings.trial_process
        else InProcessRunner(splits_for)
    )
    objective = Objective(sweep, runner, tracker, parent_id, study.study_name, budget)

    def recover(study: optuna.Study, trial: object) -> None:
        fail_dead_local_trials(study, storage, dead_trials)

    remaining = budget.remaining(study)
    if sweep.sampler == "grid":  # every point once: a finished grid has nothing left to draw
        remaining = min(remaining, grid_trials_left(study, sweep.space))
    if not remaining:
        return
    done = len(study.get_trials(deepcopy=False, states=FINISHED))
    progress = SweepProgress(budget.target, done, sweep.base.epochs, enabled=show_progress)
    # A stop is raised only while a trial trains (the objective releases it there, where its
    # run is closed and its params re-queued). Between trials Optuna asks and tells on its
    # own: there the stop waits, and ends the loop once the trial just told is recorded.
    with progress, stops_held():
        runner.progress = progress
        study.optimize(
            objective,
            n_trials=remaining,  # also bounds the attempts when every trial fails
            timeout=settings.timeout,
            catch=(TrialFailed,),
            callbacks=[budget, recover, progress, _stop_if_asked],
        )


def _stop_if_asked(study: optuna.Study, trial: FrozenTrial) -> None:
    if stop_pending():
        study.stop()  # no new trial is asked; `stops_held` raises the stop after the loop


def remember_tracking(study: optuna.Study, tracking_uri: str, experiment: str) -> None:
    """Stores where the study logs, so `worker` needs no MLflow flags (never a password)."""
    redacted = redact_url(tracking_uri)
    attrs: dict[str, str | None] = {"experiment": experiment, "tracking_uri": tracking_uri}
    if redacted != tracking_uri:
        attrs = {"experiment": experiment, "tracking_uri": None, "redacted": redacted}
    study.set_user_attr(TRACKING_ATTR, attrs)
