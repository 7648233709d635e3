"""Samplers seeded per draw: no repeats across processes, the same sequence after a resume."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from mnist_models.errors import ConfigError
from sweeps.engine.recovery import requeue
from sweeps.engine.samplers import SAMPLERS, draw_index, grid_trials_left, make_sampler
from sweeps.spec.space import SearchSpace
from sweeps.spec.sweep_file import SweepConfig
from sweeps.store.keys import RETRY_OF_ATTR

optuna.logging.set_verbosity(optuna.logging.WARNING)

# The packaged MLP sweep's space, with grid values for the grid sampler.
SPACE = SearchSpace.from_dict(
    {
        "lr": {"type": "float", "low": 0.001, "high": 0.005, "log": True, "grid": [0.001, 0.005]},
        "batch_size": {"type": "categorical", "choices": [64, 100, 128]},
        "dropout": {"type": "float", "low": 0.0, "high": 0.5, "grid": [0.0, 0.25, 0.5]},
        "augment": {"type": "categorical", "choices": [False, True]},
    }
)


def _score(params: dict) -> float:
    """A smooth, deterministic stand-in for validation accuracy (no training: fast)."""
    return (
        -((math.log10(params["lr"]) + 2.6) ** 2)
        - (params["dropout"] - 0.2) ** 2
        + 0.01 * (params["batch_size"] == 100)
        + 0.005 * params["augment"]
    )


def _study(storage: str, sampler: str, seed: int = 7) -> optuna.Study:
    """What a new process of the sweep does: a fresh sampler on the stored study."""
    return optuna.create_study(
        study_name="s",
        storage=storage,
        sampler=make_sampler(sampler, seed, SPACE),
        direction="maximize",
        load_if_exists=True,
    )


def _complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _sweep(storage: str, sampler: str, total: int, interrupt_at: int | None = None) -> list[dict]:
    """Runs ``total`` completed trials; with ``interrupt_at``, that trial is interrupted the
    way the product does it (params re-queued, trial failed) and a new process resumes."""

    def objective(trial: optuna.Trial) -> float:
        params = SPACE.sample(trial)
        if trial.number == interrupt_at:
            requeue(trial.study, trial.number, trial.params, trial.user_attrs, False)
            raise KeyboardInterrupt
        return _score(params)

    study = _study(storage, sampler)
    try:
        study.optimize(objective, n_trials=total)
    except KeyboardInterrupt:
        study = _study(storage, sampler)  # the re-run of the same command
        study.optimize(objective, n_trials=total - len(_complete(study)))
    return [t.params for t in sorted(_complete(study), key=lambda t: t.number)]


def _key(params: dict) -> tuple:
    return tuple(sorted(params.items()))


@pytest.mark.parametrize(("sampler", "total", "interrupt_at"), [
    ("tpe", 14, 11),  # interrupted after TPE's 10 random start-up draws: TPE proper resumes
    ("tpe", 6, 2),
    ("random", 6, 2),
    ("qmc", 6, 2),
])  # fmt: skip
def test_an_interrupted_and_resumed_sweep_proposes_what_an_uninterrupted_one_did(
    tmp_path: Path, sampler: str, total: int, interrupt_at: int
) -> None:
    straight = _sweep(f"sqlite:///{tmp_path / 'a.db'}", sampler, total)
    resumed = _sweep(f"sqlite:///{tmp_path / 'b.db'}", sampler, total, interrupt_at)
    assert len(straight) == total
    assert resumed == straight
    assert len({_key(p) for p in straight}) == total


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_a_resumed_study_never_proposes_a_configuration_it_already_holds(
    tmp_path: Path, sampler: str
) -> None:
    storage = f"sqlite:///{tmp_path / 'o.db'}"
    first = _sweep(storage, sampler, 3)
    # The same command again with a larger budget: a new process, the same seed.
    study = _study(storage, sampler)
    more = 12 if sampler == "grid" else 5
    study.optimize(lambda trial: _score(SPACE.sample(trial)), n_trials=more - 3)
    params = [_key(t.params) for t in study.trials]
    assert params[:3] == [_key(p) for p in first]
    assert len(set(params)) == len(params) == more


def test_an_interrupted_grid_sweep_still_tries_each_point_exactly_once(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'g.db'}"
    points = _sweep(storage, "grid", 36, interrupt_at=4)
    assert len({_key(p) for p in points}) == 36 == SPACE.grid_size()
    study = _study(storage, "grid")
    assert grid_trials_left(study, SPACE) == 0, "a finished grid has nothing left to run"


def test_grid_trials_left_counts_free_points_and_queued_retries(tmp_path: Path) -> None:
    study = _study(f"sqlite:///{tmp_path / 'g.db'}", "grid")
    assert grid_trials_left(study, SPACE) == 36
    study.optimize(lambda trial: _score(SPACE.sample(trial)), n_trials=2)

    def fail(trial: optuna.Trial) -> float:  # a failed point (diverged) is not drawn again
        SPACE.sample(trial)
        raise ValueError("diverged")

    study.optimize(fail, n_trials=1, catch=(ValueError,))
    assert grid_trials_left(study, SPACE) == 33
    study.enqueue_trial(study.trials[0].params, user_attrs={RETRY_OF_ATTR: 0})
    assert grid_trials_left(study, SPACE) == 34


def test_workers_drawing_side_by_side_never_repeat_each_other(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'w.db'}"
    workers = [_study(storage, "random"), _study(storage, "random")]  # same study seed
    asked = []
    for _ in range(4):  # each asks while the other's trial still runs
        trials = [worker.ask() for worker in workers]
        asked += [_key(SPACE.sample(trial)) for trial in trials]
        for worker, trial in zip(workers, trials, strict=True):
            worker.tell(trial, _score(trial.params))
    assert len(set(asked)) == len(asked) == 8


def test_tpe_workers_spread_out_with_constant_liar(tmp_path: Path) -> None:
    """Past the random start-up, two TPE workers asking at once get different configs."""
    storage = f"sqlite:///{tmp_path / 't.db'}"
    _sweep(storage, "tpe", 10)
    workers = [_study(storage, "tpe"), _study(storage, "tpe")]
    for _ in range(3):
        trials = [worker.ask() for worker in workers]
        drawn = [_key(SPACE.sample(trial)) for trial in trials]
        assert drawn[0] != drawn[1]
        for worker, trial in zip(workers, trials, strict=True):
            worker.tell(trial, _score(trial.params))


def test_the_draw_index_skips_retries_only(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'i.db'}")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    study.enqueue_trial({"x": 0.5}, user_attrs={RETRY_OF_ATTR: 1})
    study.enqueue_trial({"x": 0.25})  # a user's own enqueued trial draws nothing either...
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    # ...but only retries are known to repeat a draw: trial 3 counts, trial 2 does not.
    assert [draw_index(study, n) for n in range(5)] == [0, 1, 2, 2, 3]


def test_each_sampler_builds_and_reports_its_optuna_class() -> None:
    names = {name: make_sampler(name, 0, SPACE).optuna_name for name in SAMPLERS}
    assert names == {
        "tpe": "TPESampler",
        "random": "RandomSampler",
        "qmc": "QMCSampler",
        "cmaes": "CmaEsSampler",
        "grid": "GridSampler",
    }


def _sweep_file(sampler: str, trials: int, lr: dict) -> dict:
    return {
        "sweep": {"trials": trials, "sampler": sampler},
        "fixed": {"epochs": 1},
        "space": {"lr": lr, "batch_size": {"type": "categorical", "choices": [64, 128]}},
    }


def test_a_grid_sweep_needs_grid_values_for_every_float() -> None:
    lr = {"type": "float", "low": 0.001, "high": 0.005}
    with pytest.raises(ConfigError, match=r"space\.lr: sampler 'grid' needs the values to try"):
        SweepConfig.from_dict(_sweep_file("grid", 2, lr), source="s.toml")
    SweepConfig.from_dict(_sweep_file("tpe", 2, lr))  # other samplers search the range
    lr["grid"] = [0.001, 0.002, 0.005]
    assert SweepConfig.from_dict(_sweep_file("grid", 6, lr)).space.grid_size() == 6


def test_a_grid_sweep_cannot_ask_for_more_trials_than_points() -> None:
    lr = {"type": "float", "low": 0.001, "high": 0.005, "grid": [0.001, 0.005]}
    with pytest.raises(ConfigError, match=r"sweep\.trials=5: the grid has 4 points"):
        SweepConfig.from_dict(_sweep_file("grid", 5, lr), source="s.toml")
    sweep = SweepConfig.from_dict(_sweep_file("grid", 4, lr))
    # Fixing a searched key shrinks the grid, and the file's trial count with it...
    assert sweep.with_overrides({"batch_size": 64}).trials == 2
    # ...but a --trials the grid cannot fill is refused.
    with pytest.raises(ConfigError, match=r"sweep\.trials=3: the grid has 2 points"):
        sweep.with_overrides({"batch_size": 64}, trials=3)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"grid": []}, "space.x.grid: must not be empty"),
        ({"grid": [0.5, 2.0]}, "space.x.grid: 2.0 is outside [0.1, 1.0]"),
        ({"grid": [0.5, 0.5]}, "repeats a value"),
        ({"grid": ["a"]}, "space.x.grid: 'a': expected a number"),
        ({"grid": [True]}, "space.x.grid: True: expected a number"),
        ({"grid": 0.5}, "space.x.grid=0.5: expected list"),
    ],
)
def test_bad_grid_values_are_one_line_errors(table: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.").replace("[", r"\[")):
        SearchSpace.from_dict({"x": {"type": "float", "low": 0.1, "high": 1.0, **table}})


def test_int_grids_default_to_every_integer_of_a_small_range() -> None:
    space = SearchSpace.from_dict({"epochs": {"type": "int", "low": 1, "high": 3}})
    assert space.grid() == {"epochs": [1, 2, 3]}
    wide = SearchSpace.from_dict({"epochs": {"type": "int", "low": 1, "high": 1000}})
    with pytest.raises(ConfigError, match="give grid"):
        wide.grid()
    odd = SearchSpace.from_dict({"epochs": {"type": "int", "low": 1, "high": 9, "grid": [2, 8]}})
    assert odd.grid() == {"epochs": [2, 8]}
    with pytest.raises(ConfigError, match=r"space\.epochs\.grid: 2\.5: expected an integer"):
        SearchSpace.from_dict({"epochs": {"type": "int", "low": 1, "high": 9, "grid": [2.5]}})
