"""Search spaces parse strictly from TOML tables and sample through real Optuna trials."""

from __future__ import annotations

import optuna
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mnist_models.errors import ConfigError
from sweeps.spec.space import CategoricalParam, FloatParam, IntParam, SearchSpace, parse_param

optuna.logging.set_verbosity(optuna.logging.WARNING)


def test_each_kind_parses() -> None:
    space = SearchSpace.from_dict(
        {
            "lr": {"type": "float", "low": 0.001, "high": 0.005, "log": True},
            "epochs": {"type": "int", "low": 1, "high": 3},
            "batch_size": {"type": "categorical", "choices": [64, 100, 128]},
        }
    )
    assert space.params["lr"] == FloatParam("lr", 0.001, 0.005, log=True)
    assert space.params["epochs"] == IntParam("epochs", 1, 3)
    assert space.params["batch_size"] == CategoricalParam("batch_size", (64, 100, 128))
    assert SearchSpace.from_dict(space.to_dict()).to_dict() == space.to_dict()


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ({"type": "float", "low": 0.5, "high": 0.1}, "low=0.5 must be <= high=0.1"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "must be > 0 when log"),
        ({"type": "int", "low": 3, "high": 1}, "low=3 must be <= high=1"),
        ({"type": "categorical", "choices": []}, "choices must not be empty"),
        ({"type": "categorical", "choices": [[1, 2]]}, "must be a bool, number or string"),
        ({"type": "categorical"}, "missing ['choices']"),
        ({"type": "float", "low": 0.1}, "missing ['high']"),
        ({"type": "float", "low": "a", "high": 1.0}, "low='a': expected int or float"),
        ({"type": "int", "low": 1.5, "high": 3}, "low=1.5: expected int"),
        ({"type": "float", "low": True, "high": 1.0}, "low=True: expected int or float"),
        ({"type": "float", "low": 0.1, "high": 1.0, "step": 2}, "unknown key 'step'"),
        ({"type": "uniform", "low": 0.1, "high": 1.0}, "type='uniform': expected one of"),
        ({"low": 0.1, "high": 1.0}, "type=None: expected one of"),
        (0.5, "expected a table"),
    ],
)
def test_bad_specs_are_one_line_errors_naming_the_parameter(table: object, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_param("x", table)
    assert str(caught.value).startswith("space.x")
    assert expected in str(caught.value)


@given(
    low=st.floats(min_value=1e-5, max_value=1.0),
    width=st.floats(min_value=0.0, max_value=10.0),
    log=st.booleans(),
)
def test_samples_stay_in_bounds(low: float, width: float, log: bool) -> None:
    space = SearchSpace([FloatParam("lr", low, low + width, log=log)])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = study.ask()
    value = space.sample(trial)["lr"]
    assert low <= value <= low + width


def test_without_fixes_a_parameter() -> None:
    space = SearchSpace.from_dict(
        {
            "lr": {"type": "float", "low": 0.1, "high": 0.2},
            "dropout": {"type": "float", "low": 0, "high": 0.5},
        }
    )
    assert list(space.without(["lr"]).params) == ["dropout"]
    assert len(space) == 2


def test_a_key_whose_default_is_none_can_be_searched() -> None:
    from sweeps.spec.sweep_file import SweepConfig  # the space is checked against the config there

    sweep = SweepConfig.from_dict(
        {"space": {"data.split_seed": {"type": "int", "low": 0, "high": 3}}}, "sweep.toml"
    )
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    drawn = set()
    for _ in range(12):
        values = sweep.space.sample(study.ask())
        drawn.add(sweep.base.replace(values).data.split_seed)
    assert drawn <= {0, 1, 2, 3} and len(drawn) > 1
