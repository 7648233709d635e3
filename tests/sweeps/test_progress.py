"""The live sweep bar counts finished trials and names the best one."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from mnist_models.callbacks import EpochResult
from mnist_models.config import TrainConfig
from sweeps.progress import EpochPrinter, SweepProgress


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
