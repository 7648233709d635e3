"""A sweep file: fixed settings (a base :class:`TrainConfig`) plus a search space.

The same document, after CLI overrides, is stored on the study (user attrs), so a joining
worker or a later ``best`` needs no file and cannot drift from what the study searched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mnist_models.config import TrainConfig, config_keys, parse_value, read_toml
from mnist_models.errors import ConfigError
from sweeps.engine.samplers import SAMPLERS
from sweeps.spec.space import SearchSpace

OBJECTIVE = "val_accuracy"  # maximised; validation accuracy after the last epoch trained
SECTIONS = {"sweep", "fixed", "space"}
SWEEP_KEYS = {"trials": int, "sampler": str, "pruner": str, "repeats": int}
PRUNERS = ("none", "median", "hyperband", "wilcoxon")
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
    sampler: str = "tpe"
    pruner: str = "median"
    repeats: int = 1

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise ConfigError(f"sweep.trials={self.trials}: expected >= 1")
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sweep.sampler={self.sampler!r}: expected one of {SAMPLERS}")
        if self.pruner not in PRUNERS:
            raise ConfigError(f"sweep.pruner={self.pruner!r}: expected one of {PRUNERS}")
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
                if not isinstance(document[section], Mapping):
                    raise ConfigError(f"{section}: expected a table, got {document[section]!r}")
            settings = dict(document.get("sweep", {}))
            for key, value in settings.items():
                kind = SWEEP_KEYS.get(key)
                if kind is None:
                    raise ConfigError(
                        f"unknown key 'sweep.{key}' (expected one of {sorted(SWEEP_KEYS)})"
                    )
                if isinstance(value, bool) or not isinstance(value, kind):
                    raise ConfigError(f"sweep.{key}={value!r}: expected {kind.__name__}")
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
