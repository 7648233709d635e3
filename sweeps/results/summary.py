"""The parent run's summary when a sweep stops: best value and params, a note, the report."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
from mlflow.entities import Metric
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NOTE
from optuna.trial import FrozenTrial, TrialState

from sweeps.console import console
from sweeps.results.report import log_study_report
from sweeps.spec.sweep_file import OBJECTIVE
from sweeps.store.keys import RUN_ID_ATTR
from sweeps.store.proxy import proxy_lost
from sweeps.store.ranking import best_first, param_text, test_accuracy_text, value_text
from tracking import RunLogger, Tracker
from tracking.redact import redact_text


def finish(tracker: Tracker, parent_id: str, study: optuna.Study, status: str | None) -> None:
    """Summary, study report and (unless ``status`` is None) final status on the parent run.

    Errors here are printed in one line and swallowed: they never hide the sweep's outcome.
    """
    try:
        trials = study.get_trials(deepcopy=False)
    except Exception as exc:
        if proxy_lost(exc, None) is None:
            _warn("study summary", exc)
            return
        # The study is out of reach (its proxy stopped; the command says so): the parent run
        # still gets its status, the summary waits for the next run of the command.
        trials = None
    if trials is not None:
        if not _quietly("study summary", _summarise, tracker, parent_id, study, trials):
            return  # the store is gone: each further step would wait out its retries again
        _quietly("study report", log_study_report, tracker.client, parent_id, study)
    if status is not None:
        _quietly("parent run status", tracker.client.set_terminated, parent_id, status)


def _quietly(what: str, step: Callable[..., object], *args: object) -> bool:
    try:
        step(*args)
    except Exception as exc:
        _warn(what, exc)
        return False
    return True


def _warn(what: str, exc: Exception) -> None:
    reason = redact_text(f"{type(exc).__name__}: {exc}".splitlines()[0])
    console.print(f"warning: {what} not logged to MLflow: {reason}", markup=False)


def _summarise(
    tracker: Tracker, parent_id: str, study: optuna.Study, trials: list[FrozenTrial]
) -> None:
    """Best value and params on the parent run (tags, since they change as the study grows)."""
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState}
    tags: dict[str, Any] = {f"trials.{k.lower()}": v for k, v in counts.items() if v}
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    if completed:
        best = study.best_trial
        tags.update({"best.trial": best.number, "best.value": f"{best.value:.6f}"})
        tags.update({f"best.{key}": value for key, value in best.params.items()})
        if RUN_ID_ATTR in best.user_attrs:
            tags["best.run_id"] = best.user_attrs[RUN_ID_ATTR]
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
            params = " | ".join(param_text(trial.params.get(name)) for name in names)
            test = test_accuracy_text(trial)
            lines.append(f"| {trial.number} | {value_text(trial)} | {test} | {params} |")
    return "\n".join(lines)
