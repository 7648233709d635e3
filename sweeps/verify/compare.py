"""``mnist-sweep compare``: does X help? Variants trained on common seeds, paired tests.

Each variant trains K times; repeat *r* of every variant uses the same seed, so variant and
baseline differ, repeat by repeat, only by what was varied. The answer is the paired
difference against the first variant with its interval, p-value and a plain verdict.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from mnist_models.config import TrainConfig, parse_value
from mnist_models.data.cache import SplitsCache
from mnist_models.errors import ConfigError
from mnist_models.seeds import repeat_seeds
from mnist_models.stats import PairedTest, Summary, paired_test
from sweeps.console import console
from sweeps.engine.progress import epoch_lines
from tracking import Tracker, ended
from tracking.figures import intervals_figure
from tracking.repeats import SUMMARISED, RepeatRecord, run_repeats, summaries
from tracking.tags import ROLE_TAG

DEFAULT_REPEATS = 5
COMPARE_ROLE = "compare"


@dataclass(frozen=True)
class Variant:
    """One combination of varied values, e.g. ``{"augment": True}``."""

    overrides: dict[str, Any]

    @property
    def label(self) -> str:
        return " ".join(f"{key}={_text(value)}" for key, value in self.overrides.items())


@dataclass(frozen=True)
class Measured:
    """A variant's repeats."""

    variant: Variant
    records: list[RepeatRecord]
    run_id: str | None

    def summary(self, metric: str) -> Summary | None:
        return summaries(self.records).get(metric)

    def values(self, metric: str) -> list[float]:
        return [record.value(metric) for record in self.records]


def parse_vary(flags: Sequence[str]) -> list[Variant]:
    """``["augment=false,true", "batch_size=64,128"]`` -> every combination, first values
    first (the baseline). Values are TOML (``[512, 256]`` keeps its commas).

    Raises:
        ConfigError: A flag without ``KEY=V1,V2``, fewer than two variants, a repeated key.
    """
    if not flags:
        raise ConfigError(
            "--vary: expected at least one KEY=V1,V2[,...], e.g. --vary augment=false,true"
        )
    axes: dict[str, list[Any]] = {}
    for flag in flags:
        key, sep, text = flag.partition("=")
        key = key.strip()
        values = [parse_value(part) for part in _split_top_level(text)] if sep else []
        if not key or len(values) < 1 or any(v == "" for v in values):
            raise ConfigError(f"--vary {flag!r}: expected KEY=V1,V2[,...], e.g. augment=false,true")
        if key in axes:
            raise ConfigError(f"--vary {key}: given twice; list all its values in one --vary")
        axes[key] = values
    variants = [
        Variant(dict(zip(axes, combo, strict=True))) for combo in itertools.product(*axes.values())
    ]
    if len(variants) < 2:
        raise ConfigError(f"--vary {' '.join(flags)}: expected at least two variants to compare")
    return variants


def _split_top_level(text: str) -> list[str]:
    """Splits on commas outside brackets and quotes: ``[512,256],[1024]`` is two values."""
    parts, depth, current, quote = [], 0, "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += char
    return [*parts, current.strip()]


def run_compare(
    base: TrainConfig,
    variants: list[Variant],
    repeats: int,
    metric: str = "test_accuracy",
    data_dir: str | Path | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> list[Measured]:
    """Trains every variant ``repeats`` times on common seeds; logs one parent run with a
    run per variant and the repeats under each; prints the table and the verdicts."""
    if repeats < 2:
        raise ConfigError(f"--repeats {repeats}: compare needs >= 2 repeats (a paired test)")
    if metric not in SUMMARISED:
        raise ConfigError(f"--metric {metric!r}: expected one of {SUMMARISED}")
    configs = [base.replace(v.overrides, source=f"--vary {v.label}") for v in variants]
    if metric == "val_accuracy" and any(c.data.val_fraction == 0 for c in configs):
        raise ConfigError("--metric val_accuracy: data.val_fraction is 0 (no validation split)")
    splits_for = SplitsCache(data_dir)
    splits_for(configs[0])  # missing data fails before any run is created
    tracker = Tracker(experiment or f"mnist-{base.model}-compare", tracking_uri)
    title = "compare " + " vs ".join(v.label for v in variants)
    parent = tracker.start_run(title, tags={ROLE_TAG: COMPARE_ROLE, "model": base.model})
    measured = []
    with ended(parent):
        parent.log_params({"repeats": repeats, "metric": metric, "variants": len(variants)})
        for variant, config in zip(variants, configs, strict=True):
            run, records = run_repeats(
                tracker,
                variant.label,
                config,
                repeat_seeds(config.seed, repeats),
                splits_for,
                tags={ROLE_TAG: "variant", "model": config.model}
                | {f"vary.{k}": _text(v) for k, v in variant.overrides.items()},
                parent_run_id=parent.run_id,
                callbacks_for=epoch_lines,
            )
            measured.append(Measured(variant, records, run.run_id))
        tests = versus_first(measured, metric)
        parent.set_tags(
            {
                f"verdict.{m.variant.label.replace('=', ':')}": t.verdict  # no '=' in keys
                for m, t in zip(measured[1:], tests, strict=True)
            }
        )
        parent.log_dict(_document(measured, tests, metric), "compare.json")
        series = {
            "validation": [m.summary("val_accuracy") for m in measured],
            "test": [m.summary("test_accuracy") for m in measured],
        }
        labels = [m.variant.label.replace(" ", "\n") for m in measured]
        parent.log_figure(intervals_figure(labels, series, title), "compare.png")
    console.print(table(measured, tests, metric))
    for line in verdict_lines(measured, tests, metric):
        console.print(line, markup=False)
    console.print(
        f"MLflow run {parent.run_id} ({title}) in experiment '{tracker.experiment_name}'",
        markup=False,
    )
    return measured


def versus_first(measured: list[Measured], metric: str) -> list[PairedTest]:
    """Each variant after the first against the first, pair by pair (repeat by repeat)."""
    first = measured[0].values(metric)
    return [paired_test(m.values(metric), first) for m in measured[1:]]


def table(measured: list[Measured], tests: list[PairedTest], metric: str) -> Table:
    """variant | val mean ± CI | test mean ± CI | verdict against the first variant.

    Narrow enough for an 80-column terminal; the paired differences with their intervals and
    p-values follow as one line per variant (:func:`verdict_lines`).
    """
    repeats = len(measured[0].records)
    out = Table(title=f"{repeats} repeats per variant on common seeds (mean ± 95% CI)")
    widest = max(len(m.variant.label) for m in measured)
    out.add_column("variant", no_wrap=True, min_width=min(widest, 30))
    for name in SUMMARISED:
        out.add_column(name, justify="right", no_wrap=True)
    out.add_column(f"{metric} vs first", ratio=1)  # the column that wraps when narrow
    rows: list[PairedTest | None] = [None, *tests]
    for m, test in zip(measured, rows, strict=True):
        cells = [_summary(m.summary(key)) for key in SUMMARISED]
        out.add_row(m.variant.label, *cells, "(baseline)" if test is None else test.verdict)
    return out


def verdict_lines(measured: list[Measured], tests: list[PairedTest], metric: str) -> list[str]:
    """``augment=true vs augment=false: test_accuracy +0.0031 (95% CI ...), p = ... -> better``."""
    base = measured[0].variant.label
    return [
        f"{m.variant.label} vs {base}: {metric} {t.text()} -> {t.verdict}"
        for m, t in zip(measured[1:], tests, strict=True)
    ]


def _document(measured: list[Measured], tests: list[PairedTest], metric: str) -> dict[str, Any]:
    rows: list[PairedTest | None] = [None, *tests]
    return {
        "metric": metric,
        "seeds": [r.seed for r in measured[0].records],
        "variants": [
            {
                "label": m.variant.label,
                "overrides": m.variant.overrides,
                "run_id": m.run_id,
                **{key: m.values(key) for key in SUMMARISED},
                **(
                    {}
                    if t is None
                    else {
                        "difference": t.difference,
                        "ci": [t.low, t.high],
                        "p_value": t.p_value,
                        "p_exact": t.p_exact,
                        "verdict": t.verdict,
                    }
                ),
            }
            for m, t in zip(measured, rows, strict=True)
        ],
    }


def _summary(summary: Summary | None) -> str:
    return "-" if summary is None else summary.text()


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).replace(" ", "")
