"""Study-level views on the study's MLflow parent run: Optuna's plots and a trials table.

Everything lands in the parent run's ``study/`` artifact folder, so the MLflow UI shows the
whole study on one page. A sweep logs it when it ends; ``mnist-sweep report`` logs it again.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import optuna
from mlflow import MlflowClient
from optuna.trial import FrozenTrial, TrialState

from mnist_models.errors import ConfigError
from mnist_models.stats import Summary, summarise
from sweeps.console import console
from sweeps.spec.sweep_file import OBJECTIVE
from sweeps.store.keys import (
    CONFIG_ATTR,
    EPOCHS_TRAINED_ATTR,
    RUN_ID_ATTR,
    TEST_ACCURACY_ATTR,
    TEST_REPEATS_ATTR,
    parent_run_tags,
)
from sweeps.store.ranking import top_trials, trial_summary
from sweeps.store.storage import redact_url
from tracking import Tracker
from tracking.figures import intervals_figure
from tracking.runs import open_existing_store

FOLDER = "study"
PLOTS = ("optimization_history", "param_importances", "parallel_coordinate", "intermediate_values")
USER_ATTRS = (TEST_ACCURACY_ATTR, EPOCHS_TRAINED_ATTR, RUN_ID_ATTR)
# Drawn only for a study with repeated trials, so not in PLOTS: `report` lists every missing
# PLOTS entry as "not drawn yet", which a study trained once per trial never will be.
TOP_TRIALS = "top_trials"
# Filled for trials trained more than once (95% Student-t intervals), None otherwise.
VALUE_INTERVAL = ("value_std", "value_ci_low", "value_ci_high", "repeats")
TEST_INTERVAL = ("test_accuracy_ci_low", "test_accuracy_ci_high")
INTERVAL_COLUMNS = VALUE_INTERVAL + TEST_INTERVAL
Size = tuple[float, float]  # inches


def log_study_report(client: MlflowClient, parent_run_id: str, study: optuna.Study) -> list[str]:
    """Logs the study's plots and trials table under ``study/`` on its parent run.

    Each plot is drawn only when the study has what it needs (completed trials, varied
    params, reported epochs); one that fails to draw is skipped with a one-line warning.

    Args:
        client: The tracking store's client.
        parent_run_id: The study's parent run.
        study: The study to describe.

    Returns:
        The artifact paths logged, e.g. ``["study/optimization_history.png", ...]``.
    """
    trials = study.get_trials(deepcopy=False)
    with tempfile.TemporaryDirectory(prefix="study-report-") as tmp:
        folder = Path(tmp) / FOLDER
        folder.mkdir()
        rows = trial_rows(trials)
        with open(folder / "trials.csv", "w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=list(rows[0]) if rows else ["number"])
            writer.writeheader()
            writer.writerows(rows)
        table = {"study": study.study_name, "direction": study.direction.name, "trials": rows}
        (folder / "trials.json").write_text(json.dumps(table, indent=2), encoding="utf-8")
        draw_study_figures(study, folder)
        names = sorted(path.name for path in folder.iterdir())
        client.log_artifacts(parent_run_id, str(folder), FOLDER)
    return [f"{FOLDER}/{name}" for name in names]


def draw_study_figures(study: optuna.Study, folder: Path) -> list[Path]:
    """Draws each of Optuna's plots that the study has data for into ``folder`` as PNG.

    A study with repeated trials also gets ``top_trials.png``: its best trials' means with
    their 95% intervals.

    Returns:
        The files written, in the order of ``PLOTS``, then ``top_trials.png``.
    """
    written = []
    plots = _plots(study.get_trials(deepcopy=False))
    top = top_trials(study)
    if any(trial_summary(t) for t in study.get_trials(deepcopy=False, states=[COMPLETE])):
        plots[TOP_TRIALS] = (max(7.0, 0.9 * len(top) + 3.0), 5.0)
    for name, size in plots.items():
        title = f"Study {study.study_name}: {name.replace('_', ' ')}"
        if name == TOP_TRIALS:
            title = f"Study {study.study_name}: top {len(top)} trials by {OBJECTIVE}"
            draw = partial(_draw_top_trials, top, title)
        else:
            draw = partial(_draw, name, study)
        path = folder / f"{name}.png"
        _save_figure(path, title, size, draw)
        if path.is_file():
            written.append(path)
    return written


def trial_rows(trials: list[FrozenTrial]) -> list[dict[str, Any]]:
    """One flat row per trial, named like ``Study.trials_dataframe`` (``params_lr``, ...).

    A repeated trial also fills ``INTERVAL_COLUMNS``: the standard deviation and 95%
    Student-t interval of its validation accuracies (``value`` is their mean), how many
    repeats, and the interval of its test accuracies. They are ``None`` for a trial trained
    once, and always present, so every study's table has the same columns.
    """
    params = _param_names(trials)
    rows = []
    for trial in trials:
        value, test = trial_summary(trial), trial_summary(trial, TEST_REPEATS_ATTR)
        row: dict[str, Any] = {
            "number": trial.number,
            "state": trial.state.name,
            "value": _plain(trial.value),
            "datetime_start": trial.datetime_start.isoformat(timespec="seconds")
            if trial.datetime_start
            else None,
            "duration_s": round(trial.duration.total_seconds(), 3) if trial.duration else None,
        }
        row.update({f"params_{name}": _plain(trial.params.get(name)) for name in params})
        row.update({f"user_attrs_{key}": _plain(trial.user_attrs.get(key)) for key in USER_ATTRS})
        # Last, so the columns a study of single runs always had keep their places.
        row["value_std"] = _plain(value.std) if value else None
        row["value_ci_low"] = _plain(value.low) if value else None
        row["value_ci_high"] = _plain(value.high) if value else None
        row["repeats"] = value.n if value else None
        row["test_accuracy_ci_low"] = _plain(test.low) if test else None
        row["test_accuracy_ci_high"] = _plain(test.high) if test else None
        rows.append(row)
    return rows


def _plain(value: Any) -> Any:
    """JSON-safe: NaN and infinities become ``None``."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _param_names(trials: list[FrozenTrial]) -> list[str]:
    return list(dict.fromkeys(name for trial in trials for name in trial.params))


COMPLETE = TrialState.COMPLETE
FINISHED_OR_RUNNING = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)


def _plots(trials: list[FrozenTrial]) -> dict[str, Size]:
    """The plots that make sense for the study as it stands, with their figure sizes."""
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    params = _param_names(completed)
    varied = [p for p in params if len({repr(t.params.get(p)) for t in completed}) > 1]
    values_vary = len({t.value for t in completed}) > 1  # hence two or more completed
    # Optuna's intermediate-values plot leaves failed trials out (an interrupted one has some).
    plotted = [t for t in trials if t.state in FINISHED_OR_RUNNING]
    sizes = {
        "optimization_history": (9.0, 5.0) if completed else None,
        "param_importances": (8.0, 2.5 + 0.5 * len(params)) if varied and values_vary else None,
        "parallel_coordinate": (max(9.0, 1.8 * len(params) + 1.8), 5.5)
        if len(completed) > 1 and params
        else None,
        "intermediate_values": (9.0, 5.0) if any(t.intermediate_values for t in plotted) else None,
    }
    return {name: size for name, size in sizes.items() if size is not None}


def _draw(name: str, study: optuna.Study) -> Any:
    """One of Optuna's matplotlib plots of ``study``, labelled with our objective's name."""
    from optuna.visualization import matplotlib as views

    if name != "intermediate_values":
        return getattr(views, f"plot_{name}")(study, target_name=OBJECTIVE)
    axes = views.plot_intermediate_values(study)
    axes.set_xlabel(_step_label(study))
    axes.set_ylabel(f"{OBJECTIVE} reported for pruning")
    return axes


def _step_label(study: optuna.Study) -> str:
    """What a reported step is: an epoch, or with repeats (see sweeps.engine.pruning.RepeatReporter)
    the mean over the repeats so far at ``repeat * epochs + epoch``, or a repeat's index."""
    stored = study.user_attrs.get(CONFIG_ATTR) or {}
    sweep = stored.get("sweep", {})
    if sweep.get("repeats", 1) == 1:
        return "epoch"
    if sweep.get("pruner") == "wilcoxon":
        return "repeat (its final value)"
    epochs = stored.get("fixed", {}).get("epochs", "epochs")
    return f"repeat × {epochs} + epoch (mean over the repeats so far)"


def _draw_top_trials(trials: list[FrozenTrial], title: str) -> Any:
    """Validation (the objective) and test accuracy of ``trials``, means with intervals."""
    labels = [f"trial {t.number}\n({_runs(t)})" for t in trials]
    series: dict[str, list[Summary | None]] = {
        "validation": [trial_summary(t) or summarise([t.value or 0.0]) for t in trials],
        "test": [_test_summary(t) for t in trials],
    }
    return intervals_figure(labels, series, title).axes[0]


def _runs(trial: FrozenTrial) -> str:
    summary = trial_summary(trial)
    return f"{summary.n} runs" if summary else "1 run"


def _test_summary(trial: FrozenTrial) -> Summary | None:
    """The test accuracies' interval, the single test accuracy, or ``None`` without one."""
    repeated = trial_summary(trial, TEST_REPEATS_ATTR)
    if repeated is not None:
        return repeated
    single = trial.user_attrs.get(TEST_ACCURACY_ATTR)
    if isinstance(single, (int, float)) and math.isfinite(single):
        return summarise([single])
    return None


def _save_figure(path: Path, title: str, size: Size, draw: Callable[[], Any]) -> None:
    """Draws and saves one plot; a failure warns in one line and leaves no file behind.

    Optuna draws with pyplot and changes the global style, so style changes are undone
    (``rc_context``) and every figure opened meanwhile is closed, whatever happens.
    """
    import matplotlib
    from matplotlib import pyplot as plt

    before = set(plt.get_fignums())
    try:
        with matplotlib.rc_context(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"optuna\.visualization")
            # A crowded plot (40+ trials) still saves, only less tightly: not worth a warning.
            warnings.filterwarnings("ignore", "Tight layout not applied", UserWarning)
            axes = draw()
            figure = axes.figure
            figure.set_size_inches(*size)
            axes.set_title("", loc="left")  # where Optuna puts some of its own titles
            axes.set_title(title, pad=12)
            figure.savefig(path, dpi=100, bbox_inches="tight")
    except Exception as exc:  # a figure is never worth failing the sweep for
        path.unlink(missing_ok=True)
        message = f"warning: study report: {path.name} not drawn: {type(exc).__name__}: {exc}"
        console.print(message.splitlines()[0], markup=False)
    finally:
        for number in set(plt.get_fignums()) - before:
            plt.close(number)


def find_parent_run(study: str, experiment: str, tracking_uri: str | None) -> tuple[Tracker, str]:
    """The tracker of ``experiment`` and the parent run of ``study`` in it.

    Raises:
        ConfigError: If the store, the experiment or the parent run does not exist.
    """
    uri, client = open_existing_store(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None or found.lifecycle_stage != "active":
        raise ConfigError(f"--experiment {experiment!r}: no such experiment in {redact_url(uri)}")
    tracker = Tracker(experiment, uri)
    runs = tracker.find_runs(parent_run_tags(study))
    if not runs:
        raise ConfigError(
            f"--study {study!r}: no parent run (mnist_sweeps.role=study) in experiment "
            f"{experiment!r}; pass the sweep's --experiment"
        )
    return tracker, runs[0]
