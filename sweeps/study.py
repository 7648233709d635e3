"""Running a study: storage, sampler, pruner, the MLflow parent run, and the trial budget."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from mlflow.entities import Metric
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE
from optuna.trial import TrialState

from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from mnist_models.errors import ConfigError, TrialFailed
from sweeps.attrs import CONFIG_ATTR, SAMPLER_ATTR, TARGET_ATTR, TRACKING_ATTR
from sweeps.budget import TrialBudget
from sweeps.data_cache import SplitsCache
from sweeps.objective import Objective
from sweeps.progress import SweepProgress, console
from sweeps.pruning import make_pruner
from sweeps.ranking import best_first, test_accuracy_text, value_text
from sweeps.recovery import DeadTrialHandler, fail_dead_local_trials
from sweeps.report import log_study_report
from sweeps.samplers import grid_trials_left, make_sampler
from sweeps.storage import default_storage, open_storage, redact_url, storage_kind
from sweeps.sweep_config import OBJECTIVE, SweepConfig
from sweeps.trial_runner import InProcessRunner, SubprocessRunner, TrialRunner
from tracking import RunLogger, Tracker
from tracking.redact import redact_text
from tracking.runs import check_server
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
        study.set_user_attr("objective", OBJECTIVE)
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


def parent_tags(study: optuna.Study) -> dict[str, str]:
    """The tags that find a study's parent run."""
    return {"optuna.study": study.study_name, "mnist_sweeps.role": "study"}


def parent_run(tracker: Tracker, study: optuna.Study, sweep: SweepConfig, storage: str) -> str:
    """The study's single parent run: found again (and RUNNING again) on resume, created
    otherwise."""
    tags = parent_tags(study)
    existing = tracker.find_runs(tags)
    if existing:
        run_id = tracker.resume_run(existing[0]).id
    else:
        run_id = _new_parent_run(tracker, study, sweep, storage, tags)
    # A tag, not only the creation-time param: a resumed study may search with another sampler.
    RunLogger(tracker.client, run_id).set_tags({"optuna.sampler": sweep.sampler})
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
    run.set_tags({"optuna.storage": redact_url(storage)})
    run.client.log_dict(run.id, sweep.to_dict(), "sweep_config.json")
    return run.id


def _optuna_name(sampler: optuna.samplers.BaseSampler) -> str:
    """``TPESampler``, ``GridSampler``, ...: the Optuna sampler that draws the params."""
    return getattr(sampler, "optuna_name", type(sampler).__name__)


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
            work(
                study, optuna_storage, dead_trials, sweep, settings, tracker, parent_id, splits_for
            )
        else:
            from sweeps.workers import run_worker_processes

            run_worker_processes(settings, tracker.tracking_uri, tracker.experiment_name)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        finish(tracker, parent_id, study, status)
    return study


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
    with progress:
        runner.progress = progress
        study.optimize(
            objective,
            n_trials=remaining,  # also bounds the attempts when every trial fails
            timeout=settings.timeout,
            catch=(TrialFailed,),
            callbacks=[budget, recover, progress],
        )


def remember_tracking(study: optuna.Study, tracking_uri: str, experiment: str) -> None:
    """Stores where the study logs, so `worker` needs no MLflow flags (never a password)."""
    redacted = redact_url(tracking_uri)
    attrs: dict[str, str | None] = {"experiment": experiment, "tracking_uri": tracking_uri}
    if redacted != tracking_uri:
        attrs = {"experiment": experiment, "tracking_uri": None, "redacted": redacted}
    study.set_user_attr(TRACKING_ATTR, attrs)


def finish(tracker: Tracker, parent_id: str, study: optuna.Study, status: str | None) -> None:
    """Summary, study report and (unless ``status`` is None) final status on the parent run.

    Errors here are printed in one line and swallowed: they never hide the sweep's outcome.
    """
    if not _quietly("study summary", _summarise, tracker, parent_id, study):
        return  # the store is gone: each further step would wait out its retries again
    _quietly("study report", log_study_report, tracker.client, parent_id, study)
    if status is not None:
        _quietly("parent run status", tracker.client.set_terminated, parent_id, status)


def _quietly(what: str, step: Callable[..., object], *args: object) -> bool:
    try:
        step(*args)
    except Exception as exc:
        reason = redact_text(f"{type(exc).__name__}: {exc}".splitlines()[0])
        console.print(f"warning: {what} not logged to MLflow: {reason}", markup=False)
        return False
    return True


def _summarise(tracker: Tracker, parent_id: str, study: optuna.Study) -> None:
    """Best value and params on the parent run (tags, since they change as the study grows)."""
    trials = study.get_trials(deepcopy=False)
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState}
    tags: dict[str, Any] = {f"trials.{k.lower()}": v for k, v in counts.items() if v}
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    if completed:
        best = study.best_trial
        tags.update({"best.trial": best.number, "best.value": f"{best.value:.6f}"})
        tags.update({f"best.{key}": value for key, value in best.params.items()})
        if "mlflow_run_id" in best.user_attrs:
            tags["best.run_id"] = best.user_attrs["mlflow_run_id"]
        tracker.client.log_batch(
            parent_id,
            metrics=[Metric(f"best_{OBJECTIVE}", study.best_value, 0, len(trials))],
        )
    tags[MLFLOW_RUN_NOTE] = study_note(study, counts, completed)
    RunLogger(tracker.client, parent_id).set_tags(tags)


def study_note(
    study: optuna.Study, counts: dict[str, int], completed: list[optuna.trial.FrozenTrial]
) -> str:
    """A short Markdown summary shown as the parent run's description in the MLflow UI."""
    states = ", ".join(f"{n} {state.lower()}" for state, n in counts.items() if n)
    lines = [f"**Study `{study.study_name}`**: {states or 'no trials yet'}.", ""]
    top = best_first(completed)[:5]
    if top:
        names = list(top[0].params)
        lines += [
            f"| trial | {OBJECTIVE} | test_accuracy | " + " | ".join(names) + " |",
            "|---" * (3 + len(names)) + "|",
        ]
        for trial in top:
            params = " | ".join(_cell(trial.params.get(name)) for name in names)
            test = test_accuracy_text(trial)
            lines.append(f"| {trial.number} | {value_text(trial)} | {test} | {params} |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
