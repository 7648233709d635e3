"""Repeated runs of one configuration in MLflow.

Each repeat is its own run (curves, confusion matrix, model: everything a single run has),
nested under the configuration's run; the configuration's run holds what the repeats say
together: the mean of each final metric with its spread (``val_accuracy_std``,
``val_accuracy_ci_low``, ``val_accuracy_ci_high``, the same for ``test_accuracy``), the
per-epoch means, ``curves.png`` with a band, and ``repeats.json`` (seeds, values, run ids).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mnist_models.callbacks import Callback, EpochResult
from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from mnist_models.stats import Summary, summarise
from mnist_models.training import TrainResult
from tracking.figures import repeats_curves_figure
from tracking.logged_training import ended, train_and_end
from tracking.run_logger import RunLogger
from tracking.runs import Tracker
from tracking.tags import REPEAT_ROLE, ROLE_TAG

SUMMARISED = ("val_accuracy", "test_accuracy")  # the final metrics given with their spread


@dataclass(frozen=True)
class RepeatRecord:
    """What one repeat yields (small and picklable, so a trial process can send it).

    Attributes:
        seed: The repeat's seed.
        val_accuracy: Validation accuracy after its last epoch (NaN without a val split).
        test_accuracy: Test accuracy.
        history: Per-epoch metrics (``epoch``, ``train_loss``, ``val_accuracy``, ...).
        run_id: Its MLflow run (``None`` when tracking failed).
    """

    seed: int
    val_accuracy: float
    test_accuracy: float
    history: tuple[dict[str, float], ...] = ()
    run_id: str | None = None

    @classmethod
    def of(cls, result: TrainResult, run_id: str | None) -> RepeatRecord:
        return cls(
            seed=result.config.seed,
            val_accuracy=result.val_accuracy,
            test_accuracy=result.test.accuracy,
            history=history_rows(result),
            run_id=run_id,
        )

    def value(self, metric: str) -> float:
        return float(getattr(self, metric))


def history_rows(result: TrainResult) -> tuple[dict[str, float], ...]:
    """The run's per-epoch metrics as plain rows (``epoch`` included)."""
    return tuple(event.metrics() | {"epoch": event.epoch} for event in result.history)


def summaries(records: Sequence[RepeatRecord]) -> dict[str, Summary]:
    """Mean and 95% interval of each summarised metric that every repeat has."""
    out = {}
    for metric in SUMMARISED:
        values = [record.value(metric) for record in records]
        if values and all(math.isfinite(v) for v in values):
            out[metric] = summarise(values)
    return out


def summary_lines(records: Sequence[RepeatRecord]) -> list[str]:
    """What the repeats say, for a console: each metric's mean ± CI, and the seeds."""
    lines = [
        f"{metric}: {summary.interval_text()}" for metric, summary in summaries(records).items()
    ]
    seeds = ", ".join(str(record.seed) for record in records)
    return [*lines, f"{len(records)} repeats, seeds {seeds}"]


def summary_metrics(found: Mapping[str, Summary]) -> dict[str, float]:
    """``val_accuracy`` (the mean), ``val_accuracy_std``, ``..._ci_low``, ``..._ci_high``, ...
    of the :func:`summaries` of some repeats."""
    out: dict[str, float] = {}
    for metric, summary in found.items():
        out[metric] = summary.mean
        if summary.has_interval:
            out[f"{metric}_std"] = summary.std
            out[f"{metric}_ci_low"] = summary.low
            out[f"{metric}_ci_high"] = summary.high
    return out


def log_repeat_summary(
    run: RunLogger, config: TrainConfig, records: Sequence[RepeatRecord]
) -> dict[str, Summary]:
    """Logs the configuration and what its repeats say together on ``run`` (left open).

    The per-epoch means go in as the usual per-epoch metrics (epochs every repeat reached),
    so MLflow's charts of a repeated configuration read like those of a single run.
    """
    run.log_config(config)
    run.log_params({"repeats": len(records)})
    run.set_tags({"repeat_seeds": ",".join(str(r.seed) for r in records)})
    histories = [list(record.history) for record in records]
    epochs = min((len(h) for h in histories), default=0)
    for index in range(epochs):
        rows = [history[index] for history in histories]
        mean = {key: _mean([row[key] for row in rows]) for key in rows[0]}
        run.log_epoch(
            EpochResult(
                epoch=int(rows[0]["epoch"]),
                train_loss=mean["train_loss"],
                train_accuracy=mean["train_accuracy"],
                val_loss=mean["val_loss"],
                val_accuracy=mean["val_accuracy"],
                learning_rate=mean["learning_rate"],
                seconds=mean["epoch_seconds"],
            )
        )
    found = summaries(records)
    final = summary_metrics(found) | {"epochs_trained": max((len(h) for h in histories), default=0)}
    run.log_metrics(final, step=epochs)
    run.log_dict(
        {
            "seeds": [r.seed for r in records],
            **{metric: [r.value(metric) for r in records] for metric in SUMMARISED},
            "run_ids": [r.run_id for r in records],
        },
        "repeats.json",
    )
    if epochs:
        run.log_figure(repeats_curves_figure(histories), "curves.png")
    return found


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def train_repeats(
    tracker: Tracker,
    parent: RunLogger,
    config: TrainConfig,
    seeds: Sequence[int],
    splits_for: Callable[[TrainConfig], Splits],
    name: str,
    tags: Mapping[str, Any] | None = None,
    callbacks_for: Callable[[str], Sequence[Callback]] = lambda label: (),
    on_result: Callable[[TrainResult], None] | None = None,
) -> list[RepeatRecord]:
    """Trains ``config`` once per seed, each repeat a run nested under ``parent``, then logs
    the summary on ``parent`` (which the caller ends).

    Args:
        tracker: The experiment the repeats' runs go in.
        parent: The configuration's run.
        config: What to train; each repeat replaces only its ``seed``.
        seeds: One per repeat (``mnist_models.seeds.repeat_seeds``).
        splits_for: The data of a config (a cache: repeats differ in their validation draw).
        name: The configuration's run name; repeat *r* is ``"{name} r{r}"``.
        tags: Extra tags of each repeat's run.
        callbacks_for: Training callbacks of a repeat, given its label (progress lines).
        on_result: Sees each repeat's full result (printed figures, models) before it is
            dropped, so ten CNN repeats never sit in memory together.
    """
    records = []
    for index, seed in enumerate(seeds):
        repeat = config.replace({"seed": seed}, source=f"{name} repeat {index}")
        label = f"{name} r{index}"
        run = tracker.start_run(
            label,
            tags={
                ROLE_TAG: REPEAT_ROLE,
                "repeat": index,
                "seed": seed,
                "model": config.model,
                **(tags or {}),
            },
            parent_run_id=parent.run_id,
        )
        result = train_and_end(run, repeat, splits_for(repeat), callbacks_for(label))
        records.append(RepeatRecord.of(result, run.run_id))
        if on_result is not None:
            on_result(result)
    log_repeat_summary(parent, config, records)
    return records


def run_repeats(
    tracker: Tracker,
    name: str,
    config: TrainConfig,
    seeds: Sequence[int],
    splits_for: Callable[[TrainConfig], Splits],
    tags: Mapping[str, Any],
    parent_run_id: str | None = None,
    repeat_tags: Mapping[str, Any] | None = None,
    callbacks_for: Callable[[str], Sequence[Callback]] = lambda label: (),
    on_result: Callable[[TrainResult], None] | None = None,
) -> tuple[RunLogger, list[RepeatRecord]]:
    """Starts the configuration's run ``name`` (nested under ``parent_run_id`` if given),
    trains the repeats under it (:func:`train_repeats`) and ends it: FINISHED, or KILLED or
    FAILED as :func:`tracking.logged_training.ended` says.

    Returns:
        The ended run (tags can still be set on it) and the repeats' records.
    """
    run = tracker.start_run(name, tags=tags, parent_run_id=parent_run_id)
    with ended(run):
        records = train_repeats(
            tracker,
            run,
            config,
            seeds,
            splits_for,
            name,
            tags=repeat_tags,
            callbacks_for=callbacks_for,
            on_result=on_result,
        )
    return run, records
