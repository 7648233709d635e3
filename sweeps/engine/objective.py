"""The Optuna objective: trial → frozen config → training with callbacks → MLflow child run."""

from __future__ import annotations

import math
from typing import Any

import optuna

from mnist_models.config import TrainConfig
from mnist_models.errors import TrialFailed
from mnist_models.seeds import repeat_seeds
from sweeps.console import console
from sweeps.engine.budget import TrialBudget
from sweeps.engine.pruning import RepeatReporter
from sweeps.engine.recovery import requeue, worker_id
from sweeps.engine.runners import TrialOutcome, TrialRunner
from sweeps.engine.signals import hold_stops, release_stops
from sweeps.spec.sweep_file import SweepConfig
from sweeps.store.keys import (
    EPOCHS_TRAINED_ATTR,
    MLFLOW_ERROR_ATTR,
    REPEAT_SEEDS_ATTR,
    RETRY_OF_ATTR,
    RETRY_OF_TAG,
    RUN_ID_ATTR,
    STATE_TAG,
    STUDY_TAG,
    TEST_ACCURACY_ATTR,
    TEST_REPEATS_ATTR,
    TRIAL_CONFIG_ATTR,
    TRIAL_TAG,
    VAL_REPEATS_ATTR,
    WORKER_ATTR,
)
from sweeps.store.proxy import proxy_lost
from tracking import RunLogger, Tracker, interrupt_reason
from tracking.repeats import RepeatRecord, log_repeat_summary
from tracking.tags import FAILURE_TAG, REPEAT_ROLE, ROLE_TAG, TRACKING_FAILURE_TAG, TRIAL_ROLE

_SHORT = {"batch_size": "bs", "dropout": "do"}


def short_params(params: dict[str, Any]) -> str:
    """``lr=0.0023 bs=64 do=0.31 aug``: a run name suffix that reads and sorts well."""
    words = []
    for key, value in params.items():
        name = _SHORT.get(key.rsplit(".", 1)[-1], key.rsplit(".", 1)[-1])
        if isinstance(value, bool):
            words.append(name[:3] if value else f"no-{name[:3]}")
        elif isinstance(value, float):
            words.append(f"{name}={value:.3g}")
        else:
            words.append(f"{name}={value}")
    return " ".join(words)


class Objective:
    """Trains one trial and logs it as a child run of the study's parent run.

    Args:
        sweep: What is searched and what is fixed.
        runner: Trains a trial's config (in this process or a fresh one).
        tracker: The MLflow experiment to log into.
        parent_run_id: The study's parent run.
        study_name: Recorded as the ``optuna.study`` tag.
        budget: The study's trial budget; a trial started after it was taken does not train.
    """

    def __init__(
        self,
        sweep: SweepConfig,
        runner: TrialRunner,
        tracker: Tracker,
        parent_run_id: str,
        study_name: str,
        budget: TrialBudget | None = None,
    ) -> None:
        self.sweep = sweep
        self.runner = runner
        self.tracker = tracker
        self.parent_run_id = parent_run_id
        self.study_name = study_name
        self.budget = budget
        # Runs whose tracking failed mid-trial: id -> (Optuna state, why), closed when it can be.
        self._unclosed: dict[str, tuple[str, str]] = {}

    def __call__(self, trial: optuna.Trial) -> float:
        if self.budget is not None:
            self.budget.check(trial)  # before anything is sampled, trained or logged
        self._close_unclosed_runs()
        params = self.sweep.space.sample(trial)
        config = self.sweep.base.replace(params, source=f"trial {trial.number}")
        trial.set_user_attr(TRIAL_CONFIG_ATTR, config.to_dict())
        trial.set_user_attr(WORKER_ATTR, worker_id())
        retry_of = trial.user_attrs.get(RETRY_OF_ATTR)
        name = f"trial-{trial.number:03d} {short_params(params)}".strip()
        run = self.tracker.start_run(
            name,
            tags={
                STUDY_TAG: self.study_name,
                TRIAL_TAG: trial.number,
                STATE_TAG: "RUNNING",
                ROLE_TAG: TRIAL_ROLE,
                "model": config.model,
                **({} if retry_of is None else {RETRY_OF_TAG: retry_of}),
            },
            parent_run_id=self.parent_run_id,
            keep_going=True,  # a tracking outage costs the run, never the trial
        )
        if run.run_id is not None:
            trial.set_user_attr(RUN_ID_ATTR, run.run_id)
        try:
            # Stops are held outside training (sweeps.engine.session.work): one that came
            # since the last trial ends this one here, and none cuts short Optuna's tell.
            release_stops()
            try:
                result = self._train(trial, config, run, name)
            finally:
                hold_stops()
        except TrialFailed as exc:
            _close_after_error(run, "FAILED", str(exc))
            console.print(f"[red]{name}: failed: {exc}[/]")
            raise
        except KeyboardInterrupt as exc:  # Ctrl-C, SIGTERM or SIGHUP (sweeps.engine.signals)
            _close_after_error(run, "KILLED", interrupt_reason(exc))
            # Interrupted, not failed: the next run of the same command tries these params first.
            requeue(trial.study, trial.number, trial.params, trial.user_attrs, count_as_retry=False)
            raise
        except BaseException as exc:
            lost = proxy_lost(exc, None)  # the run says why in one line, not gRPC's repr
            _close_after_error(run, "FAILED", str(lost or f"{type(exc).__name__}: {exc}"))
            raise
        trial.set_user_attr(TEST_ACCURACY_ATTR, result.test_accuracy)
        trial.set_user_attr(EPOCHS_TRAINED_ATTR, result.epochs_trained)
        value = result.val_accuracy  # with repeats: their mean
        # A pruned trial is visibly not a finished one: KILLED status and its own state tag.
        # With repeats, where it stopped is a repeat and an epoch ("pruned in repeat 2 of 3 at
        # epoch 4"), or a repeat (Wilcoxon).
        where = (
            {"pruned_at_epoch": result.epochs_trained}
            if self.sweep.repeats == 1
            else {"pruned_at": result.stop_reason}
        )
        state, status, tags = (
            ("PRUNED", "KILLED", where) if result.stopped_early else ("COMPLETE", "FINISHED", {})
        )
        _close(run, state, status, tags)
        self._note_tracking_failure(trial, run, name, state)
        if result.stopped_early:
            pruned = (
                f"pruned at epoch {result.epochs_trained}"
                if self.sweep.repeats == 1
                else result.stop_reason
            )
            console.print(f"{name}: {pruned} (val acc {value:.4f})")
            raise optuna.TrialPruned(result.stop_reason)
        console.print(
            f"{name}: val acc [bold]{result.val_text}[/] test acc {result.test_text} "
            f"({result.seconds:.1f}s)"
        )
        return value

    def _train(
        self, trial: optuna.Trial, config: TrainConfig, run: RunLogger, name: str
    ) -> TrialOutcome:
        """One training into the trial's run, or, with repeats, one nested run per repeat."""
        if self.sweep.repeats == 1:
            return self.runner.run(trial, config, run, name)
        seeds = repeat_seeds(config.seed, self.sweep.repeats)
        trial.set_user_attr(REPEAT_SEEDS_ATTR, seeds)
        wilcoxon = self.sweep.pruner == "wilcoxon"
        reporter = RepeatReporter(trial, config.epochs, per_epoch=not wilcoxon)
        outcomes: list[TrialOutcome] = []
        records: list[RepeatRecord] = []
        stop_reason = None
        for index, seed in enumerate(seeds):
            label = f"{name} r{index}"
            child = (
                RunLogger(self.tracker.client, None, run.failure)  # nothing to nest under
                if run.run_id is None
                else self.tracker.start_run(
                    label,
                    tags={
                        STUDY_TAG: self.study_name,
                        TRIAL_TAG: trial.number,
                        ROLE_TAG: REPEAT_ROLE,
                        "repeat": index,
                        "seed": seed,
                        "model": config.model,
                    },
                    parent_run_id=run.run_id,
                    keep_going=True,
                )
            )
            repeat = config.replace({"seed": seed}, source=f"trial {trial.number} repeat {index}")
            try:
                outcome = self.runner.run(reporter.repeat(index), repeat, child, label)
            except KeyboardInterrupt as exc:
                _close_after_error(child, "KILLED", interrupt_reason(exc))
                raise
            except BaseException as exc:
                _close_after_error(child, "FAILED", f"{type(exc).__name__}: {exc}")
                raise
            outcomes.append(outcome)
            records.append(
                RepeatRecord(
                    seed, outcome.val_accuracy, outcome.test_accuracy, outcome.history, child.run_id
                )
            )
            trial.set_user_attr(VAL_REPEATS_ATTR, [o.val_accuracy for o in outcomes])
            trial.set_user_attr(TEST_REPEATS_ATTR, [o.test_accuracy for o in outcomes])
            if outcome.stopped_early:
                _close(child, "PRUNED", "KILLED", {"pruned_at_epoch": outcome.epochs_trained})
                stop_reason = (
                    f"pruned in repeat {index + 1} of {len(seeds)} at epoch "
                    f"{outcome.epochs_trained}"
                )
                break
            _close(child, "COMPLETE", "FINISHED", {})
            if wilcoxon:
                trial.report(outcome.val_accuracy, step=index)
                if trial.should_prune():
                    stop_reason = f"pruned after repeat {index + 1} of {len(seeds)} (Wilcoxon)"
                    break
        found = log_repeat_summary(run, config, records)
        if stop_reason is None and "val_accuracy" in found:
            run.rename(f"{name} {found['val_accuracy'].text()}")
        return TrialOutcome(
            val_accuracy=found["val_accuracy"].mean if "val_accuracy" in found else math.nan,
            test_accuracy=found["test_accuracy"].mean if "test_accuracy" in found else math.nan,
            epochs_trained=sum(o.epochs_trained for o in outcomes),
            seconds=sum(o.seconds for o in outcomes),
            stop_reason=stop_reason,
            seed=config.seed,
            val_text=found["val_accuracy"].text() if "val_accuracy" in found else "nan",
            test_text=found["test_accuracy"].text() if "test_accuracy" in found else "nan",
        )

    def _note_tracking_failure(
        self, trial: optuna.Trial, run: RunLogger, name: str, state: str
    ) -> None:
        """Keeps the trial's Optuna record whole and says which MLflow run is incomplete."""
        if run.failure is None:
            return
        trial.set_user_attr(MLFLOW_ERROR_ATTR, run.failure)
        console.print(
            f"[yellow]{name}: MLflow run {run.run_id or '(not created)'} is incomplete "
            f"({run.failure}); the trial's result is kept in Optuna[/]"
        )
        if run.run_id is not None:
            self._unclosed[run.run_id] = (state, run.failure)

    def _close_unclosed_runs(self) -> None:
        """Ends, as FAILED, runs whose tracking failed mid-trial, once the store answers again."""
        if not self._unclosed or not self.tracker.answers():
            return
        for run_id, (state, failure) in list(self._unclosed.items()):
            closing = RunLogger(self.tracker.client, run_id)
            closing.set_tags({STATE_TAG: state, TRACKING_FAILURE_TAG: failure})
            closing.end("FAILED")
            if closing.failure is None:
                del self._unclosed[run_id]


def _close(run: RunLogger, state: str, status: str, tags: dict[str, Any]) -> None:
    run.set_tags({STATE_TAG: state, **tags})
    run.end(status)


def _close_after_error(run: RunLogger, status: str, reason: str) -> None:
    """Marks the run failed without letting a tracking error hide the original one."""
    try:
        _close(run, "FAIL", status, {FAILURE_TAG: reason[:5000]})
    except Exception as exc:  # the trial's own error is the one to report
        console.print(f"[red]could not close MLflow run {run.run_id}: {exc}[/]")
