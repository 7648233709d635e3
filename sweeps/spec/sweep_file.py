"""A sweep file: fixed settings (a base :class:`TrainConfig`) plus a search space.

The same document, after CLI overrides, is stored on the study (user attrs), so a joining
worker or a later ``best`` needs no file and cannot drift from what the study searched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from mnist_models import fields
from mnist_models.config import TrainConfig, config_keys, parse_value, read_toml
from mnist_models.errors import ConfigError
from sweeps.spec.space import SearchSpace

# The samplers and pruners a sweep file may name (built by sweeps.engine.samplers / .pruning).
Sampler = Literal["tpe", "random", "qmc", "cmaes", "grid"]
SAMPLERS: tuple[Sampler, ...] = get_args(Sampler)
Pruner = Literal["none", "median", "hyperband", "wilcoxon"]
PRUNERS: tuple[Pruner, ...] = get_args(Pruner)

OBJECTIVE = "val_accuracy"  # maximised; validation accuracy after the last epoch trained
SECTIONS = {"sweep", "fixed", "space"}


def _sweep_int(name: str, value: Any) -> int:
    return fields.as_int(name, value, expected="int")


def _sweep_str(name: str, value: Any) -> str:
    return fields.as_str(name, value, expected="str")


SWEEP_KEYS = {
    "trials": _sweep_int,
    "sampler": _sweep_str,
    "pruner": _sweep_str,
    "repeats": _sweep_int,
}
MAX_REPEATS = 100
# The one-sided signed-rank test of the Wilcoxon pruner cannot reach its p < 0.1 with fewer
# than 4 pairs (its smallest p is 1/2**n), so fewer repeats would never prune a trial.
WILCOXON_MIN_REPEATS = 4


@dataclass(frozen=True)
class SweepConfig:
    """What a study searches.

    Attributes:
        base: The fixed settings every trial starts from.
        space: The searched parameters (dotted config keys).
        trials: Default number of finished trials the study should reach.
        sampler: ``tpe`` (default), ``random``, ``qmc``, ``cmaes`` or ``grid`` (every
            parameter then needs grid values; see :meth:`SearchSpace.grid`).
        pruner: ``median`` (default), ``hyperband``, ``wilcoxon`` (repeats as its instances;
            needs ``repeats >= 4``) or ``none``.
        repeats: How many times each trial trains its configuration (repeat *r* of every trial
            with the same seed); the objective is the mean over the repeats.
    """

    base: TrainConfig
    space: SearchSpace
    trials: int = 20
    sampler: Sampler = "tpe"
    pruner: Pruner = "median"
    repeats: int = 1

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ConfigError(f"sweep.trials={self.trials}: expected >= 1")
        fields.as_choice("sweep.sampler", self.sampler, SAMPLERS)
        fields.as_choice("sweep.pruner", self.pruner, PRUNERS)
        if not 1 <= self.repeats <= MAX_REPEATS:
            raise ConfigError(f"sweep.repeats={self.repeats}: expected 1 to {MAX_REPEATS}")
        if self.pruner == "wilcoxon" and self.repeats < WILCOXON_MIN_REPEATS:
            raise ConfigError(
                f"sweep.pruner='wilcoxon' with sweep.repeats={self.repeats}: expected repeats >= "
                f"{WILCOXON_MIN_REPEATS} (the repeats are its paired instances; with fewer, its "
                "signed-rank test can never reach p < 0.1)"
            )
        if self.base.data.val_fraction <= 0:
            raise ConfigError(
                f"fixed.data.val_fraction={self.base.data.val_fraction}: expected > 0 "
                f"(a sweep maximises {OBJECTIVE})"
            )
        _check_space(self.base, self.space)
        if self.sampler == "grid":
            points = self.space.grid_size()  # a float without grid values fails here
            if self.trials > points:
                raise ConfigError(
                    f"sweep.trials={self.trials}: the grid has {points} points; "
                    f"set trials = {points} or fewer"
                )

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], source: str = "sweep config") -> SweepConfig:
        """Parses a sweep document strictly; errors name ``source`` and the key."""
        try:
            unknown = set(document) - SECTIONS
            if unknown:
                raise ConfigError(
                    f"unknown section {sorted(unknown)[0]!r} (expected {sorted(SECTIONS)})"
                )
            for section in sorted(SECTIONS & set(document)):
                table = document[section]
                fields.as_table(section, table, shown=section, expected=f"a table, got {table!r}")
            settings = dict(document.get("sweep", {}))
            for key, value in settings.items():
                check = SWEEP_KEYS.get(key)
                if check is None:
                    raise ConfigError(
                        f"unknown key 'sweep.{key}' (expected one of {sorted(SWEEP_KEYS)})"
                    )
                check(f"sweep.{key}", value)
            base = TrainConfig.from_dict(document.get("fixed", {}), source="fixed")
            space = SearchSpace.from_dict(document.get("space", {}))
            return cls(base=base, space=space, **settings)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> SweepConfig:
        """Reads a sweep file, or a plain config file (then nothing is searched)."""
        document = read_toml(path)
        if not SECTIONS & set(document):
            document = {"fixed": document}  # an exported or logged config.toml
        return cls.from_dict(document, source=str(path))

    @classmethod
    def for_model(cls, model: str) -> SweepConfig:
        """The packaged default sweep of ``model`` (``sweeps/<model>.toml``)."""
        resource = resources.files("sweeps").joinpath(f"{model}.toml")
        if not resource.is_file():
            raise ConfigError(f"--model {model!r}: no packaged sweep sweeps/{model}.toml")
        with resources.as_file(resource) as path:
            return cls.from_file(path)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep": {
                "trials": self.trials,
                "sampler": self.sampler,
                "pruner": self.pruner,
                "repeats": self.repeats,
            },
            "fixed": self.base.to_dict(),
            "space": self.space.to_dict(),
        }

    def with_overrides(
        self, overrides: Mapping[str, Any], source: str = "command line", **settings: Any
    ) -> SweepConfig:
        """Applies dotted-key overrides to the fixed settings.

        A key that is also searched becomes fixed: it leaves the space (a grid sweep's
        ``trials`` then shrinks with its grid, unless ``trials`` is given here).
        """
        base = self.base.replace(overrides, source=source) if overrides else self.base
        space = self.space.without(list(overrides))
        values: dict[str, Any] = {
            "trials": self.trials,
            "sampler": self.sampler,
            "pruner": self.pruner,
            "repeats": self.repeats,
        }
        values.update({k: v for k, v in settings.items() if v is not None})
        try:
            if values["sampler"] == "grid" and settings.get("trials") is None:
                values["trials"] = min(values["trials"], space.grid_size())
            return SweepConfig(base=base, space=space, **values)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None


def _check_space(base: TrainConfig, space: SearchSpace) -> None:
    """Every searched key must exist, and every bound or choice must make a valid config."""
    keys = set(config_keys())
    for name, param in space.params.items():
        if name not in keys:
            raise ConfigError(
                f"space.{name}: the model has no parameter {name!r} "
                f"(searchable: {', '.join(sorted(keys))})"
            )
        for value in param.candidates():
            try:
                base.replace({name: value})
            except ConfigError as exc:
                message = str(exc).removeprefix("override: ")
                raise ConfigError(f"space.{name}: {message}") from None


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """Turns ``["lr=0.01", "mlp.hidden_sizes=[512]"]`` into a dict (values parsed as TOML)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set lr=0.002")
        out[key.strip()] = parse_value(value.strip())
    return out
