"""Pruning with repeats: the per-epoch pruners on the repeats so far, and the Wilcoxon pruner
with the repeats as its paired instances."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from mnist_models.config import TrainConfig
from sweeps.engine.pruning import RepeatReporter, make_pruner
from sweeps.engine.session import SweepSettings, load_or_create_study
from sweeps.engine.sweep import run_sweep
from sweeps.spec.space import SearchSpace
from sweeps.spec.sweep_file import SweepConfig


class _Trial:
    def __init__(self, prune_after: int = 10**9) -> None:
        self.reports: list[tuple[int, float]] = []
        self.prune_after = prune_after

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return len(self.reports) >= self.prune_after


def test_each_step_is_the_mean_over_the_repeats_so_far() -> None:
    trial = _Trial()
    reporter = RepeatReporter(trial, epochs=2)
    first = reporter.repeat(0)
    first.report(0.90, step=1)
    first.report(0.94, step=2)
    second = reporter.repeat(1)
    second.report(0.80, step=1)
    second.report(0.96, step=2)
    assert trial.reports == [
        (1, 0.90),
        (2, 0.94),
        (3, pytest.approx(0.85)),  # repeat 1, epoch 1: mean of 0.90 and 0.80
        (4, pytest.approx(0.95)),
    ]


def test_one_repeat_reports_exactly_as_a_single_run() -> None:
    trial = _Trial(prune_after=2)
    view = RepeatReporter(trial, epochs=3).repeat(0)
    view.report(0.5, step=1)
    assert not view.should_prune()
    view.report(0.6, step=2)
    assert view.should_prune()
    assert trial.reports == [(1, 0.5), (2, 0.6)]


def test_with_the_wilcoxon_pruner_epochs_report_nothing() -> None:
    trial = _Trial(prune_after=0)
    view = RepeatReporter(trial, epochs=3, per_epoch=False).repeat(0)
    view.report(0.5, step=1)
    assert trial.reports == [] and not view.should_prune()


def test_repeats_report_in_order() -> None:
    with pytest.raises(ValueError, match="index=1"):
        RepeatReporter(_Trial(), epochs=1).repeat(1)


def _wilcoxon_study(best: list[float]) -> optuna.Study:
    study = optuna.create_study(direction="maximize", pruner=make_pruner("wilcoxon"))
    study.add_trial(
        optuna.trial.create_trial(
            value=sum(best) / len(best),
            intermediate_values=dict(enumerate(best)),
            params={},
            distributions={},
        )
    )
    return study


@pytest.mark.parametrize(("repeats", "pruned"), [(3, False), (4, True)])
def test_the_wilcoxon_pruner_needs_four_repeats(repeats: int, pruned: bool) -> None:
    study = _wilcoxon_study([0.98, 0.97, 0.985, 0.975, 0.98])
    trial = study.ask()
    for step in range(repeats):
        trial.report(0.90 + step * 0.001, step=step)  # worse on every shared seed
    assert trial.should_prune() is pruned


def test_a_sweep_with_the_wilcoxon_pruner_stops_a_hopeless_trial(
    tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    base = TrainConfig().replace(
        {"epochs": 1, "data.train_size": 800, "data.test_size": 300, "mlp.hidden_sizes": [16]}
    )
    space = SearchSpace.from_dict({"lr": {"type": "float", "low": 1e-6, "high": 0.01, "log": True}})
    sweep = SweepConfig(base=base, space=space, trials=2, pruner="wilcoxon", repeats=5)
    settings = SweepSettings(study="wil", data_dir=mnist_dir, storage=f"sqlite:///{tmp_path}/o.db")
    study = load_or_create_study(sweep, settings)
    study.enqueue_trial({"lr": 0.005})  # learns: the best trial
    study.enqueue_trial({"lr": 1e-6})  # barely moves: behind on every seed
    study = run_sweep(sweep, settings)
    good, bad = study.trials
    assert good.state == TrialState.COMPLETE
    assert bad.state == TrialState.PRUNED
    assert len(bad.user_attrs["val_accuracy_repeats"]) == 4  # stopped after 4 of its 5 repeats
    assert sorted(bad.intermediate_values) == [0, 1, 2, 3]
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs(
        [client.get_experiment_by_name("wil").experiment_id],
        filter_string=f"tags.`optuna.trial` = '{bad.number}' and "
        "tags.`mnist_sweeps.role` = 'trial'",
    )
    assert run.data.tags["pruned_at"] == "pruned after repeat 4 of 5 (Wilcoxon)"
    assert run.data.tags["optuna.state"] == "PRUNED"


def test_repeat_r_of_two_configs_starts_from_the_same_weights(small_splits) -> None:
    """Common random numbers: what a seed sets does not depend on the searched params."""
    from mnist_models.mlp.trainer import MLPTrainer
    from mnist_models.seeds import repeat_seeds

    seed = repeat_seeds(0, 2)[1]
    a = TrainConfig().replace({"seed": seed, "lr": 0.001, "dropout": 0.1, "batch_size": 64})
    b = TrainConfig().replace({"seed": seed, "lr": 0.005, "dropout": 0.4, "batch_size": 128})
    other = a.replace({"seed": repeat_seeds(0, 2)[0]})
    weights = [
        [p.value.copy() for p in MLPTrainer(c, small_splits).model.parameters()]
        for c in (a, b, other)
    ]
    assert all((x == y).all() for x, y in zip(weights[0], weights[1], strict=True))
    assert not all((x == y).all() for x, y in zip(weights[0], weights[2], strict=True))
