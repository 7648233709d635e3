"""``mnist-sweep reproduce --reported ID|all``: re-run the report's published numbers.

Each entry runs with its faithful-mode switches on (and, with ``--corrected``, once more with
them off), is logged as an MLflow run in the ``reported-runs`` experiment, and gets a verdict;
the command prints one table (and writes it as Markdown with ``--report FILE.md``).

With ``--repeats K`` each entry trains K times (its own seed first, then
``mnist_models.seeds.repeat_seeds``'s others), the K runs nested under the entry's run: the
verdict is still the published-seed run's, and the table adds the headline figure's spread
over the K seeds and whether the published figure lies inside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from mnist_models.config import TrainConfig
from mnist_models.data.cache import SplitsCache
from mnist_models.errors import ConfigError
from mnist_models.seeds import repeat_seeds
from mnist_models.training import TrainResult
from sweeps.console import console
from sweeps.engine.progress import EpochPrinter
from sweeps.reported.registry import (
    DIFFERS,
    EXACT,
    WITHIN,
    ReportedRun,
    Spread,
    Verdict,
    judge,
    printed_figures,
    select,
    spread,
)
from tracking import RunLogger, Tracker, train_and_end
from tracking.repeats import run_repeats
from tracking.tags import ROLE_TAG

EXPERIMENT = "reported-runs"


@dataclass(frozen=True)
class Row:
    entry: ReportedRun
    verdict: Verdict
    run_id: str
    corrected: str | None = None  # the headline figure with the faithful switches off
    repeats: int = 1  # runs of the entry (--repeats): the first has the published seed
    spread: Spread | None = None  # the headline figure over those runs (None for one run)


def reproduce_reported(
    ids: str,
    corrected: bool = False,
    data_dir: str | Path | None = None,
    tracking_uri: str | None = None,
    report_file: str | Path | None = None,
    repeats: int = 1,
) -> list[Row]:
    """Runs the selected entries and prints (and optionally writes) the verdict table.

    Args:
        ids: ``all`` or a comma-separated list of registry ids.
        corrected: Also run each entry once with its faithful-mode switches off.
        data_dir: Folder of the MNIST files (``None``: the usual lookup).
        tracking_uri: MLflow tracking URI (``None``: MLflow's default).
        report_file: Where to write the Markdown table and notes.
        repeats: Runs per entry (the entry's seed first); 1 is a single run, as always.

    Raises:
        ConfigError: For ``repeats < 1`` or an unknown id, before anything runs.
    """
    if repeats < 1:
        raise ConfigError(f"--repeats {repeats}: expected >= 1")
    entries = select(ids)  # an unknown id fails before anything runs
    tracker = Tracker(EXPERIMENT, tracking_uri)
    splits_for = SplitsCache(data_dir)
    rows = []
    for entry in entries:
        if repeats == 1:
            result, run_id = _run(tracker, entry, entry.config, "faithful", splits_for)
            verdict = judge(entry, printed_figures(result, entry.format))
            spread_ = None
        else:
            verdict, spread_, run_id = _run_repeats(tracker, entry, repeats, splits_for)
        tracker.client.set_tag(run_id, "verdict", verdict.label)
        tracker.client.set_tag(run_id, "reproduced.value", verdict.reproduced[entry.headline])
        fixed = None
        if corrected:  # one run with the published seed, also under --repeats
            fixed_result, _ = _run(
                tracker, entry, entry.corrected_config(), "corrected", splits_for
            )
            fixed = printed_figures(fixed_result, entry.format)[entry.headline]
        rows.append(Row(entry, verdict, run_id, fixed, repeats, spread_))
        console.print(
            f"{entry.id}: {entry.headline} reported {entry.reported[entry.headline]}, "
            f"reproduced {verdict.reproduced[entry.headline]} → {verdict.label}"
        )
        if spread_ is not None:
            console.print(f"{entry.id}: {_spread_sentence(entry, spread_)}")
    console.print(table(rows, corrected))
    if repeats > 1:
        console.print(spread_table(rows))
    if report_file is not None:
        Path(report_file).write_text(markdown(rows, corrected), encoding="utf-8")
        console.print(f"wrote {report_file}", markup=False)
    return rows


def _tags(entry: ReportedRun, config: TrainConfig, mode: str) -> dict[str, Any]:
    return {
        ROLE_TAG: "reported",
        "reported.id": entry.id,
        "reported.value": entry.reported[entry.headline],
        "reported.metric": entry.headline,
        "source": f"assignment4-report.md, {entry.section}",
        "mode": mode,
        "model": config.model,
    }


def _printer(label: str, config: TrainConfig) -> EpochPrinter:
    return EpochPrinter(label, every=max(1, config.epochs // 10))


def _run(
    tracker: Tracker,
    entry: ReportedRun,
    config: TrainConfig,
    mode: str,
    splits_for: SplitsCache,
) -> tuple[TrainResult, str]:
    suffix = "" if mode == "faithful" else f" ({mode})"
    run = tracker.start_run(f"reported-{entry.id}{suffix}", tags=_tags(entry, config, mode))
    printer = _printer(f"{entry.id}{suffix}", config)
    result = train_and_end(run, config, splits_for(config), [printer])
    return result, run.id


def _run_repeats(
    tracker: Tracker, entry: ReportedRun, repeats: int, splits_for: SplitsCache
) -> tuple[Verdict, Spread | None, str]:
    """The entry trained ``repeats`` times, nested under one run that gets the spread's tags.

    Only a seed changes between repeats: Part 1's legacy-RNG entries take any seed below
    2**32 (``repeat_seeds`` stays below 2**31), and their dropout rates do not depend on it.
    """
    config = entry.config
    seeds = repeat_seeds(config.seed, repeats)
    figures: list[dict[str, str]] = []
    parent, _ = run_repeats(
        tracker,
        f"reported-{entry.id}",
        config,
        seeds,
        splits_for,
        _tags(entry, config, "faithful"),
        repeat_tags={"reported.id": entry.id, "mode": "faithful"},
        callbacks_for=lambda label: [_printer(label, config)],
        on_result=lambda result: figures.append(printed_figures(result, entry.format)),
    )
    verdict = judge(entry, figures[0])  # the published seed's run, as with a single run
    found = spread(entry, seeds, figures)
    _tag_spread(parent, found)  # tags can still be set on the ended run
    return verdict, found, parent.id


def _tag_spread(run: RunLogger, found: Spread | None) -> None:
    if found is None:  # a figure that is not a number (a run without a validation split)
        run.set_tags({"spread.verdict": "no spread: the headline figure is not a number"})
        return
    run.set_tags(
        {
            "spread.verdict": found.label,
            "spread.mean": found.mean,
            "spread.sd": found.sd,
            "spread.low": found.low,
            "spread.high": found.high,
            "spread.values": ",".join(f"{v:g}" for v in found.values),
            "spread.seeds": ",".join(str(s) for s in found.seeds),
        }
    )


def _spread_sentence(entry: ReportedRun, found: Spread) -> str:
    """``val_accuracy over 5 seeds 0.9829 ± 0.0012 (mean ± sd), 95% prediction interval
    0.9790 to 0.9868: reported 0.9719 is outside the spread``."""
    level = f"{found.confidence:.0%}"
    return (
        f"{entry.headline} over {len(found.values)} seeds {found.text()} (mean ± sd), "
        f"{level} prediction interval {found.interval_text()}: reported "
        f"{entry.reported[entry.headline]} is {found.label}"
    )


def table(rows: list[Row], corrected: bool) -> Table:
    """id | reported | reproduced | verdict (| corrected)."""
    out = Table(title="Reported runs")
    for name in ("id", "metric", "reported", "reproduced", "verdict"):
        out.add_column(name, no_wrap=name != "verdict")
    if corrected:
        out.add_column("corrected", justify="right")
    for row in rows:
        entry, verdict = row.entry, row.verdict
        label = _short_label(verdict)
        style = "red" if verdict.label == DIFFERS else ""
        cells = [
            entry.id,
            entry.headline,
            entry.reported[entry.headline],
            verdict.reproduced[entry.headline],
            f"[{style}]{label}[/]" if style else label,
        ]
        out.add_row(*cells, *([row.corrected or "-"] if corrected else []))
    return out


def spread_table(rows: list[Row]) -> Table:
    """id | mean ± sd | 95% PI | published: the headline figure over each entry's repeats.

    A table of its own, beside the verdicts: together they would not fit 80 columns. The
    interval is the prediction interval of one more run; "published" says whether the
    published figure lies inside it.
    """
    out = Table(title=f"Over {_repeated(rows)} seeds (the published seed first)")
    out.add_column("id", overflow="fold")  # the longest id folds rather than lose its end
    out.add_column("mean ± sd", justify="right", no_wrap=True)
    out.add_column("95% PI", justify="right", no_wrap=True)  # of one more run
    out.add_column("published", no_wrap=True)
    for row in rows:
        found = row.spread
        if found is None:
            out.add_row(row.entry.id, "-", "-", "-")
            continue
        style = "" if found.inside else "red"
        label = f"[{style}]{found.label}[/]" if style else found.label
        out.add_row(row.entry.id, found.text(), f"{found.low:.4f}-{found.high:.4f}", label)
    return out


def _repeated(rows: list[Row]) -> int:
    """The runs per entry when more than one (every row has the same), else 0."""
    most = max((row.repeats for row in rows), default=1)
    return most if most > 1 else 0


def _spread_cells(found: Spread | None) -> list[str]:
    if found is None:
        return ["-", "-", "-"]
    return [found.text(), found.interval_text(), found.label]


def _short_label(verdict: Verdict) -> str:
    """The table's verdict cell: the details of a difference or a reason go in the notes."""
    return f"{verdict.label} ({verdict.detail})" if verdict.label == WITHIN else verdict.label


def markdown(rows: list[Row], corrected: bool) -> str:
    """The verdict table and each entry's note, as Markdown."""
    repeated = _repeated(rows)
    head = ["id", "section", "metric", "reported", "reproduced", "verdict"]
    head += ["corrected"] if corrected else []
    if repeated:
        head += [f"over {repeated} seeds (mean ± sd)", "95% prediction interval", "spread"]
    lines = ["# Reported runs, reproduced", ""]
    if repeated:
        lines += [
            f"Each entry ran {repeated} times: with its published seed first (the "
            "*reproduced* figure and the verdict are that run's), then with seeds derived "
            "from it. The published figure is *inside the spread* when it lies in the 95% "
            "prediction interval of one more run, mean ± t(n-1) · sd · √(1 + 1/n) over the "
            f"{repeated} runs"
            + ("; the corrected figure is one run with the published seed." if corrected else "."),
            "",
        ]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        entry, verdict = row.entry, row.verdict
        label = _short_label(verdict)
        cells = [
            f"`{entry.id}`",
            entry.section,
            entry.headline,
            entry.reported[entry.headline],
            verdict.reproduced[entry.headline],
            label.replace("|", "/"),
        ]
        cells += [row.corrected or "-"] if corrected else []
        cells += _spread_cells(row.spread) if repeated else []
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Notes", ""]
    for row in rows:
        entry, verdict = row.entry, row.verdict
        note = " ".join(entry.note.split())
        published = ", ".join(f"{k} {v}" for k, v in entry.reported.items())
        figures = ", ".join(f"{k} {v}" for k, v in verdict.reproduced.items())
        lines.append(f'- **`{entry.id}`** ({entry.section}, "{entry.wording}"): {note}')
        lines.append(f"  Published: {published}. Reproduced: {figures}.")
        if verdict.label != EXACT and verdict.detail:
            lines.append(f"  Verdict: {verdict.label}: {verdict.detail}.")
        if row.spread is not None:
            found = row.spread
            pairs = zip(found.seeds, found.values, strict=True)
            values = ", ".join(f"{value:g} (seed {seed})" for seed, value in pairs)
            lines.append(f"  Over {len(found.values)} seeds: {values}.")
            lines.append(f"  Spread: {_spread_sentence(entry, found)}.")
        elif row.repeats > 1:
            lines.append(f"  Spread: none ({entry.headline} is not a number in every run).")
        nested = f" ({row.repeats} runs nested under it)" if row.repeats > 1 else ""
        lines.append(f"  MLflow run `{row.run_id}`{nested}.")
    return "\n".join(lines) + "\n"
