"""A stop that arrives while Optuna asks or tells is held until the trial is recorded.

Optuna creates a trial in ``ask`` before its sampler runs, and stores a value in ``tell``
after the objective returned: no ``except`` of ours surrounds either, so a stop raised there
used to leave a RUNNING trial that no process would ever close.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from mnist_models.data import Splits
from sweeps.engine.recovery import DeadTrialHandler
from sweeps.engine.session import SweepSettings, parent_run, work
from sweeps.engine.signals import (
    Interrupted,
    hold_stops,
    release_stops,
    stop_pending,
    stopping_on_signals,
    stops_held,
)
from sweeps.spec.sweep_file import SweepConfig
from tracking import Tracker

SWEEP = {
    "sweep": {"trials": 3, "pruner": "none", "sampler": "random"},
    "fixed": {"epochs": 1, "batch_size": 64, "mlp": {"hidden_sizes": [16]}},
    "space": {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
}


class _StopInAsk(optuna.samplers.RandomSampler):
    """Sends SIGTERM from inside ``ask`` of the second trial, which then exists already."""

    def before_trial(self, study, trial):  # type: ignore[no-untyped-def]
        if trial.number == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        super().before_trial(study, trial)


class _StopInTell(optuna.storages.RDBStorage):
    """Sends SIGTERM as ``tell`` starts to store the first trial's state."""

    def set_trial_state_values(self, trial_id, state, values=None):  # type: ignore[no-untyped-def]
        if state == TrialState.COMPLETE and not getattr(self, "sent", False):
            self.sent = True
            os.kill(os.getpid(), signal.SIGTERM)
        return super().set_trial_state_values(trial_id, state, values)


def _work(
    tmp_path: Path,
    splits: Splits,
    sampler: optuna.samplers.BaseSampler | None = None,
    storage_type: type[optuna.storages.RDBStorage] = optuna.storages.RDBStorage,
) -> optuna.Study:
    storage_url = f"sqlite:///{tmp_path / 'optuna.db'}"
    sweep = SweepConfig.from_dict(SWEEP)
    storage = storage_type(storage_url)
    sampler = sampler or optuna.samplers.RandomSampler(seed=0)
    study = optuna.create_study(
        study_name="held", storage=storage, sampler=sampler, direction="maximize"
    )
    tracker = Tracker("held", f"sqlite:///{tmp_path / 'mlflow.db'}")
    parent = parent_run(tracker, study, sweep, storage_url)
    settings = SweepSettings(study="held", storage=storage_url)
    with pytest.raises(Interrupted) as caught, stopping_on_signals():
        work(
            study,
            *(storage, DeadTrialHandler(tracker.client), sweep, settings, tracker, parent),
            lambda config: splits,
            show_progress=False,
        )
    assert caught.value.signum == signal.SIGTERM
    return study


def _runs(tmp_path: Path) -> dict[int, tuple[str, str | None]]:
    """Trial number -> (status, failure reason) of each trial run."""
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name("held").experiment_id
    runs = client.search_runs([experiment_id], "tags.`mnist_sweeps.role` = 'trial'")
    return {
        int(r.data.tags["optuna.trial"]): (r.info.status, r.data.tags.get("failure_reason"))
        for r in runs
    }


def test_a_stop_during_ask_ends_that_trial_as_an_interrupted_one(
    tmp_path: Path, small_splits: Splits
) -> None:
    study = _work(tmp_path, small_splits, _StopInAsk(seed=0))
    states = [t.state for t in study.trials]
    # Trial 1 was created when the stop came: it ends as an interrupted trial does (its run
    # KILLED, its params queued again), never RUNNING.
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    assert study.trials[2].system_attrs["fixed_params"] == study.trials[1].params
    assert _runs(tmp_path) == {
        0: ("FINISHED", None),
        1: ("KILLED", "interrupted by SIGTERM"),
    }


def test_a_stop_during_tell_lets_the_value_be_stored_and_asks_no_new_trial(
    tmp_path: Path, small_splits: Splits
) -> None:
    study = _work(tmp_path, small_splits, storage_type=_StopInTell)
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE and trial.value is not None
    assert _runs(tmp_path) == {0: ("FINISHED", None)}


def test_held_stops_wait_for_the_release_and_an_error_on_its_way_out_wins() -> None:
    with pytest.raises(Interrupted), stopping_on_signals():
        hold_stops()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop_pending()
        release_stops()
    with pytest.raises(ValueError), stopping_on_signals(), stops_held():
        os.kill(os.getpid(), signal.SIGTERM)
        raise ValueError("the error that was already leaving")
    assert not stop_pending()  # outside any handler, nothing is held or pending
