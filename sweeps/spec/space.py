"""Search spaces as data: one parameter spec per TOML table, sampled through an Optuna trial.

A space never builds a model. It only turns a trial into a dict of dotted config keys, which
:meth:`mnist_models.config.TrainConfig.replace` validates like any other override.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import optuna

from mnist_models import fields
from mnist_models.errors import ConfigError

Choice = bool | int | float | str


class ParamSpec(abc.ABC):
    """One searched parameter, named by its dotted config key."""

    name: str

    @abc.abstractmethod
    def suggest(self, trial: optuna.Trial) -> Any:
        """Draws a value through ``trial``."""

    @abc.abstractmethod
    def candidates(self) -> list[Any]:
        """Values spanning the range (bounds or every choice), used to validate the space."""

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The TOML table this spec was read from."""

    @abc.abstractmethod
    def grid_values(self) -> list[Any]:
        """The values a grid search tries.

        Raises:
            ConfigError: The parameter has no finite set of values (a float without ``grid``).
        """


class _RangeParam(ParamSpec):
    """Shared bounds checks of the numeric specs.

    ``grid`` lists the values a grid search tries (``sampler = "grid"``); every other sampler
    searches the whole range and ignores it.
    """

    kind: ClassVar[str]
    name: str
    low: float
    high: float
    log: bool
    grid: tuple[float, ...] | None

    def __post_init__(self) -> None:
        if self.low > self.high:
            raise ConfigError(f"space.{self.name}: low={self.low} must be <= high={self.high}")
        if self.log and self.low <= 0:
            raise ConfigError(f"space.{self.name}: low={self.low} must be > 0 when log = true")
        if self.grid is None:
            return
        if not self.grid:
            raise ConfigError(f"space.{self.name}.grid: must not be empty")
        for value in self.grid:
            if not self.low <= value <= self.high:
                raise ConfigError(
                    f"space.{self.name}.grid: {value!r} is outside [{self.low}, {self.high}]"
                )
        if len(set(self.grid)) < len(self.grid):
            raise ConfigError(f"space.{self.name}.grid: {list(self.grid)} repeats a value")

    def candidates(self) -> list[Any]:
        return [self.low, self.high, *(self.grid or ())]

    def to_dict(self) -> dict[str, Any]:
        table = {"type": self.kind, "low": self.low, "high": self.high, "log": self.log}
        if self.grid is not None:  # absent otherwise: studies stored before grids still match
            table["grid"] = list(self.grid)
        return table


@dataclass(frozen=True)
class FloatParam(_RangeParam):
    kind: ClassVar[str] = "float"
    name: str
    low: float
    high: float
    log: bool = False
    grid: tuple[float, ...] | None = None

    def suggest(self, trial: optuna.Trial) -> float:
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def candidates(self) -> list[Any]:
        # As floats, like every value drawn: integer bounds must not pass for an integer key.
        return [_as_float(value) for value in super().candidates()]

    def grid_values(self) -> list[Any]:
        if self.grid is None:
            raise ConfigError(
                f"space.{self.name}: sampler 'grid' needs the values to try, "
                f"e.g. grid = [{self.low}, {self.high}]"
            )
        return [float(value) for value in self.grid]


def _as_float(value: float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer bound beyond the float range
        return float("inf") if value > 0 else float("-inf")


@dataclass(frozen=True)
class IntParam(_RangeParam):
    kind: ClassVar[str] = "int"
    name: str
    low: int
    high: int
    log: bool = False
    grid: tuple[int, ...] | None = None

    # A grid over every integer of a wider range is a mistake, not a search.
    MAX_IMPLICIT_GRID: ClassVar[int] = 100

    def suggest(self, trial: optuna.Trial) -> int:
        return trial.suggest_int(self.name, self.low, self.high, log=self.log)

    def grid_values(self) -> list[Any]:
        if self.grid is not None:
            return list(self.grid)
        if self.high - self.low >= self.MAX_IMPLICIT_GRID:
            raise ConfigError(
                f"space.{self.name}: sampler 'grid' tries every integer of [{self.low}, "
                f"{self.high}] only up to {self.MAX_IMPLICIT_GRID} values; give grid = [...]"
            )
        return list(range(self.low, self.high + 1))


@dataclass(frozen=True)
class CategoricalParam(ParamSpec):
    name: str
    choices: tuple[Choice, ...]

    def __post_init__(self) -> None:
        if not self.choices:
            raise ConfigError(f"space.{self.name}: choices must not be empty")
        for choice in self.choices:
            if not isinstance(choice, (bool, int, float, str)):
                raise ConfigError(
                    f"space.{self.name}: choice {choice!r} must be a bool, number or string"
                )

    def suggest(self, trial: optuna.Trial) -> Any:
        return trial.suggest_categorical(self.name, list(self.choices))

    def candidates(self) -> list[Any]:
        return list(self.choices)

    def to_dict(self) -> dict[str, Any]:
        return {"type": "categorical", "choices": list(self.choices)}

    def grid_values(self) -> list[Any]:
        return list(self.choices)


def _number(name: str, value: Any) -> None:
    # Not yet finite: an infinite bound is refused as the config value it stands for.
    fields.as_float(name, value, finite=False, expected="int or float")


def _integer(name: str, value: Any) -> None:
    fields.as_int(name, value, expected="int")


def _flag(name: str, value: Any) -> None:
    fields.as_bool(name, value, expected="bool")


def _array(name: str, value: Any) -> None:
    fields.as_list(name, value, expected="list")


_KINDS: dict[str, tuple[type[ParamSpec], dict[str, Callable[[str, Any], None]], set[str]]] = {
    # kind: (class, {field: its check}, required fields)
    "float": (
        FloatParam,
        {"low": _number, "high": _number, "log": _flag, "grid": _array},
        {"low", "high"},
    ),
    "int": (
        IntParam,
        {"low": _integer, "high": _integer, "log": _flag, "grid": _array},
        {"low", "high"},
    ),
    "categorical": (CategoricalParam, {"choices": _array}, {"choices"}),
}


def parse_param(name: str, table: Any) -> ParamSpec:
    """Builds a :class:`ParamSpec` from its TOML table, e.g. ``{type="float", low=.., high=..}``."""
    where = f"space.{name}"
    fields.as_table(where, table, shown=where, expected='a table like {type = "float", ...}')
    kind = fields.as_choice(f"{where}.type", table.get("type"), sorted(_KINDS))
    cls, checks, required = _KINDS[kind]
    for key, value in table.items():
        if key == "type":
            continue
        if key not in checks:
            raise ConfigError(
                f"{where}: unknown key {key!r} for type {kind!r} (expected {sorted(checks)})"
            )
        checks[key](f"{where}.{key}", value)
    missing = required - table.keys()
    if missing:
        raise ConfigError(f"{where}: missing {sorted(missing)} for type {kind!r}")
    kwargs = {key: value for key, value in table.items() if key != "type"}
    if kind == "categorical":
        kwargs["choices"] = tuple(kwargs["choices"])
    if "grid" in kwargs:
        kwargs["grid"] = tuple(_grid_value(name, kind, value) for value in kwargs["grid"])
    return cls(name=name, **kwargs)  # type: ignore[call-arg]


def _grid_value(name: str, kind: str, value: Any) -> Any:
    """One ``grid`` entry, typed like the parameter's bounds (and kept as written)."""
    shown = f"space.{name}.grid: {value!r}"
    if kind == "int":
        fields.as_int(name, value, shown=shown, expected="an integer")
    else:
        fields.as_float(name, value, finite=False, shown=shown, expected="a number")
    return value


class SearchSpace:
    """An ordered set of :class:`ParamSpec` keyed by dotted config key."""

    def __init__(self, params: Sequence[ParamSpec] = ()) -> None:
        self.params = {param.name: param for param in params}

    @classmethod
    def from_dict(cls, tables: Mapping[str, Any]) -> SearchSpace:
        return cls([parse_param(name, table) for name, table in tables.items()])

    def to_dict(self) -> dict[str, Any]:
        return {name: param.to_dict() for name, param in self.params.items()}

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draws every parameter; the result maps dotted config keys to values."""
        return {name: param.suggest(trial) for name, param in self.params.items()}

    def grid(self) -> dict[str, list[Any]]:
        """Every parameter's grid values, for Optuna's ``GridSampler``.

        Raises:
            ConfigError: A parameter has no grid (a float without ``grid = [...]``), or the
                space is empty.
        """
        if not self.params:
            raise ConfigError("space: sampler 'grid' needs at least one searched parameter")
        return {name: param.grid_values() for name, param in self.params.items()}

    def grid_size(self) -> int:
        """How many points the grid has."""
        return math.prod(len(values) for values in self.grid().values())

    def without(self, names: Sequence[str]) -> SearchSpace:
        """A copy lacking ``names`` (used when a ``--set`` fixes a searched parameter)."""
        return SearchSpace([p for n, p in self.params.items() if n not in names])

    def __len__(self) -> int:
        return len(self.params)
