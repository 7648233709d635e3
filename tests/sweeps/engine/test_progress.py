"""The live sweep bar counts finished trials and names the best one."""

from __future__ import annotations

import logging

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from mnist_models.callbacks import EpochResult
from mnist_models.config import TrainConfig
from mnist_models.errors import TrainingDiverged
from sweeps.console import quiet_expected_trial_ends
from sweeps.engine.progress import EpochPrinter, SweepProgress


def test_the_bar_follows_finished_trials_and_the_best() -> None:
    study = optuna.create_study(direction="maximize")
    lr = {"lr": FloatDistribution(0.001, 0.01)}
    for value, state in ((0.91, TrialState.COMPLETE), (0.95, TrialState.COMPLETE)):
        study.add_trial(
            create_trial(state=state, value=value, params={"lr": 0.002}, distributions=lr)
        )
    study.add_trial(create_trial(state=TrialState.PRUNED, params={"lr": 0.003}, distributions=lr))
    study.add_trial(create_trial(state=TrialState.FAIL, params={"lr": 0.004}, distributions=lr))
    progress = SweepProgress(target=5, done=0, epochs=10, enabled=False)
    progress.trial_started(epochs=10)
    progress.epoch_done(4)
    progress(study, study.trials[-1])
    trials, epochs = progress._bar.tasks
    assert trials.completed == 3, "complete and pruned trials count; failed ones do not"
    assert trials.description == "trials (best 0.9500, trial 1)"
    assert (epochs.completed, epochs.total) == (4, 10)


def test_epoch_lines_can_be_thinned(capsys: pytest.CaptureFixture[str]) -> None:
    printer = EpochPrinter("run", every=3)
    printer.on_train_begin(TrainConfig(epochs=7))
    for epoch in range(1, 8):
        printer.on_epoch_end(EpochResult(epoch, 0.5, 0.9, 0.4, 0.91, 0.001, 0.1))
    printed = [line.split()[2] for line in capsys.readouterr().err.splitlines()]
    assert printed == ["3/7", "6/7", "7/7"], "every third epoch and the last"
    with pytest.raises(ValueError, match="every=0"):
        EpochPrinter("run", every=0)


def test_expected_trial_ends_print_no_traceback_unexpected_ones_do(
    capfd: pytest.CaptureFixture[str],
) -> None:
    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        if trial.number == 0:
            raise TrainingDiverged(epoch=1, loss=float("nan"))  # a TrialFailed
        if trial.number == 1:
            raise KeyboardInterrupt
        if trial.number == 2:
            raise ValueError("nobody expects this")
        return x

    verbosity = optuna.logging.get_verbosity()
    quiet_expected_trial_ends()
    quiet_expected_trial_ends()  # once per process, however often it is called
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        study = optuna.create_study(study_name="quiet")
        study.optimize(objective, n_trials=1, catch=(TrainingDiverged,))
        with pytest.raises(KeyboardInterrupt):
            study.optimize(objective, n_trials=1)
        study.optimize(objective, n_trials=2, catch=(ValueError,))
    finally:
        optuna.logging.set_verbosity(verbosity)
    err = capfd.readouterr().err
    # Optuna's own lines still show, once each, at the verbosity it was given.
    assert err.count("A new study created in memory with name: quiet") == 1, err
    assert err.count("Trial 3 finished with value") == 1, err
    # The unexpected failure keeps its report and traceback ...
    assert "Trial 2 failed with parameters" in err and "ValueError: nobody expects this" in err
    assert err.count("Traceback (most recent call last)") == 1, err
    # ... the expected ones leave no trace at all.
    assert "Trial 0 failed" not in err and "diverged at epoch 1" not in err
    assert "Trial 1 failed" not in err and "KeyboardInterrupt" not in err
    assert "failed with value None" not in err
    ours = [h for h in logging.getLogger("optuna").handlers if type(h).__name__ == "_OptunaConsole"]
    assert len(ours) == 1, "installed once"
