"""The registry of a course report's published runs, and an honest verdict for each re-run.

One TOML file per published number lives in ``sweeps/reported/`` (see ``baseline.toml``):
the report's wording, the full config with the faithful-mode switches the report's notebook
needs, the figures exactly as printed, a tolerance and a note. A re-run prints its figures
the way the report did and compares them digit by digit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, get_args

from mnist_models import fields
from mnist_models.config import TrainConfig, read_toml
from mnist_models.errors import ConfigError
from mnist_models.stats import CONFIDENCE, Interval, prediction_interval, summarise
from mnist_models.training import TrainResult
from sweeps.reported.formats import printed_figures as grokking_figures

EXACT, WITHIN, DIFFERS, NOT_REPRODUCIBLE = (
    "exact",
    "within tolerance",
    "differs",
    "not reproducible",
)
INSIDE, OUTSIDE = "inside the spread", "outside the spread"
# How the report printed its figures (see ReportedRun.format).
Format = Literal["grokking", "keras"]
FORMATS: tuple[Format, ...] = get_args(Format)


def _part(name: str, value: Any, source: str) -> int:
    return fields.as_int(name, value, low=1, expected="an integer >= 1", source=source)


def _tolerance(name: str, value: Any, source: str) -> float:
    return fields.as_float(name, value, low=0.0, expected="a finite number >= 0", source=source)


def _str(name: str, value: Any, source: str) -> str:
    return fields.as_str(name, value, source=source)


def _bool(name: str, value: Any, source: str) -> bool:
    return fields.as_bool(name, value, source=source)


def _table(name: str, value: Any, source: str) -> Mapping[str, Any]:
    return fields.as_table(name, value, source=source)


# Each field of an entry and its check (the strict rules of mnist_models.fields, as a config's:
# a bool is never a number, a number never a string).
_KINDS: dict[str, Callable[[str, Any, str], Any]] = {
    "id": _str, "part": _part, "section": _str, "wording": _str, "note": _str,
    "reproducible": _bool, "reason": _str, "tolerance": _tolerance, "headline": _str,
    "format": _str, "reported": _table, "config": _table, "corrected": _table,
}  # fmt: skip


@dataclass(frozen=True)
class ReportedRun:
    """One published number and how to re-run it.

    Attributes:
        id: File name without ``.toml`` (``baseline``, ``cnn-1-epoch``, ...).
        headline: The printed figure that is the published result (``test_accuracy``).
        format: How the report printed figures: ``grokking`` (accuracies in full, errors
            truncated to 5 characters) or ``keras`` (4 decimals, as Keras's progress line).
        reported: The figures exactly as printed, by name.
        config: The full config, faithful-mode switches on.
        corrected: Dotted overrides that turn the faithful switches off.
        reproducible: False when the published figure is not what it claims to be.
        reason: Why it is not reproducible.
        tolerance: Allowed absolute difference of the headline figure.
    """

    id: str
    part: int
    section: str
    wording: str
    note: str
    headline: str
    format: Format
    reported: dict[str, str]
    config: TrainConfig
    corrected: dict[str, Any] = field(default_factory=dict)
    reproducible: bool = True
    reason: str = ""
    tolerance: float = 0.0

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], source: str) -> ReportedRun:
        """Parses one registry entry strictly: each field must have its own type.

        Raises:
            ConfigError: One line naming ``source``, the bad field and what was expected.
        """
        unknown = set(document) - set(_KINDS)
        if unknown:
            raise ConfigError(f"{source}: unknown field {sorted(unknown)[0]!r}")
        for name in ("id", "section", "wording", "reported", "config"):
            if name not in document:
                raise ConfigError(f"{source}: missing field {name!r}")
        values = {name: _KINDS[name](name, value, source) for name, value in document.items()}
        reported = values["reported"]
        for figure, printed in reported.items():
            # A float would lose the digits as printed.
            expected = "a string, the figure exactly as printed"
            fields.as_str(f"reported.{figure}", printed, expected=expected, source=source)
        headline = values.get("headline", "test_accuracy")
        if headline not in reported:
            raise ConfigError(f"{source}: headline {headline!r} is not among [reported] figures")
        fmt = values.get("format", "grokking")
        fields.as_choice("format", fmt, FORMATS, source=source, shown=f"format {fmt!r}")
        config = TrainConfig.from_dict(values["config"], source=f"{source} [config]")
        corrected = dict(values.get("corrected", {}))
        config.replace(corrected, source=f"{source} [corrected]")  # validated now, not mid-run
        return cls(
            id=values["id"],
            part=values.get("part", 1),
            section=values["section"],
            wording=values["wording"],
            note=values.get("note", ""),
            headline=headline,
            format=fmt,
            reported=dict(reported),
            config=config,
            corrected=corrected,
            reproducible=values.get("reproducible", True),
            reason=values.get("reason", ""),
            tolerance=values.get("tolerance", 0.0),
        )

    @classmethod
    def from_file(cls, path: str | Path) -> ReportedRun:
        path = Path(path)
        entry = cls.from_dict(read_toml(path), source=str(path))
        if entry.id != path.stem:
            raise ConfigError(f"{path}: id {entry.id!r} must equal the file name {path.stem!r}")
        return entry

    def corrected_config(self) -> TrainConfig:
        """The same run with every faithful-mode switch off."""
        return self.config.replace(self.corrected, source=f"{self.id} [corrected]")


def registry() -> dict[str, ReportedRun]:
    """Every packaged entry by id, in file-name order."""
    folder = resources.files("sweeps").joinpath("reported")
    entries = {}
    with resources.as_file(folder) as path:
        for file in sorted(Path(path).glob("*.toml")):
            entry = ReportedRun.from_file(file)
            entries[entry.id] = entry
    return entries


def select(ids: str) -> list[ReportedRun]:
    """``all`` or a comma-separated list of ids.

    Raises:
        ConfigError: An unknown id, listing the known ones.
    """
    known = registry()
    if ids == "all":
        return list(known.values())
    chosen = []
    for name in (part.strip() for part in ids.split(",")):
        if name not in known:
            raise ConfigError(f"--reported {name!r}: no such entry (known: {', '.join(known)})")
        chosen.append(known[name])
    return chosen


def printed_figures(result: TrainResult, style: Format) -> dict[str, str]:
    """The figures of a finished run printed the way the report printed them."""
    last = result.history[-1]
    if style == "keras":
        values = {
            "loss": last.train_loss,
            "accuracy": last.train_accuracy,
            "val_loss": last.val_loss,
            "val_accuracy": last.val_accuracy,
            "test_accuracy": result.test.accuracy,
        }
        return {key: f"{value:.4f}" for key, value in values.items()}
    return grokking_figures(result)


@dataclass(frozen=True)
class Verdict:
    """How a re-run compares with the published figures."""

    label: str
    reproduced: dict[str, str]
    detail: str = ""


def judge(entry: ReportedRun, reproduced: Mapping[str, str]) -> Verdict:
    """``exact`` when every published figure prints the same; ``within tolerance`` when the
    headline is within the entry's tolerance; ``differs`` otherwise; ``not reproducible``
    when the entry says the published figure is not what it claims to be."""
    figures = dict(reproduced)
    if not entry.reproducible:
        return Verdict(NOT_REPRODUCIBLE, figures, entry.reason)
    mismatched = [k for k, v in entry.reported.items() if figures.get(k) != v]
    if not mismatched:
        return Verdict(EXACT, figures)
    ours = float(figures.get(entry.headline, "nan"))
    theirs = float(entry.reported[entry.headline])
    if not math.isnan(ours) and abs(ours - theirs) <= entry.tolerance:
        return Verdict(WITHIN, figures, f"±{entry.tolerance:g}")
    detail = ", ".join(f"{k} {entry.reported[k]} vs {figures.get(k, '-')}" for k in mismatched)
    return Verdict(DIFFERS, figures, detail)


@dataclass(frozen=True)
class Spread:
    """The headline figure over several seeds, against the published single run.

    Attributes:
        seeds: The seed of each run (the entry's own seed first).
        values: The headline figure of each run, as printed and read back as a number.
        published: The published figure.
        mean: Mean of ``values``.
        sd: Their sample standard deviation (ddof 1).
        low: Lower end of the prediction interval of one more run.
        high: Upper end.
        confidence: The prediction interval's level.
    """

    seeds: tuple[int, ...]
    values: tuple[float, ...]
    published: float
    mean: float
    sd: float
    low: float
    high: float
    confidence: float = CONFIDENCE

    @property
    def inside(self) -> bool:
        """Whether the published figure could be one more run of ours (within the interval)."""
        return Interval(self.low, self.high).contains(self.published)

    @property
    def label(self) -> str:
        """``inside the spread`` or ``outside the spread``."""
        return INSIDE if self.inside else OUTSIDE

    def text(self, digits: int = 4) -> str:
        """``0.9829 ± 0.0012`` (mean ± sd)."""
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f}"

    def interval_text(self, digits: int = 4) -> str:
        """``0.9790 to 0.9868`` (the prediction interval)."""
        return f"{self.low:.{digits}f} to {self.high:.{digits}f}"


def spread(
    entry: ReportedRun, seeds: Sequence[int], figures: Sequence[Mapping[str, str]]
) -> Spread | None:
    """The headline figure of each run (``figures[r]`` trained with ``seeds[r]``) against the
    published one; ``None`` for fewer than two runs or a figure that is not a finite number.

    The question is whether the published run could be one more seed of ours, so the interval
    is the prediction interval of a single run, not the (narrower) interval of the mean.
    """
    if len(seeds) != len(figures):
        raise ValueError(f"{len(seeds)} seeds for {len(figures)} runs")
    values = [float(f.get(entry.headline, "nan")) for f in figures]
    if len(values) < 2 or not all(math.isfinite(v) for v in values):
        return None
    summary = summarise(values)
    low, high = prediction_interval(values)
    return Spread(
        seeds=tuple(seeds),
        values=tuple(values),
        published=float(entry.reported[entry.headline]),
        mean=summary.mean,
        sd=summary.std,
        low=low,
        high=high,
    )
