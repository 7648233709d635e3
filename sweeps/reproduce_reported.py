"""``mnist-sweep reproduce --reported ID|all``: re-run the report's published numbers.

Each entry runs with its faithful-mode switches on (and, with ``--corrected``, once more with
them off), is logged as an MLflow run in the ``reported-runs`` experiment, and gets a verdict;
the command prints one table (and writes it as Markdown with ``--report FILE.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from mnist_models.config import TrainConfig
from mnist_models.training import TrainResult
from sweeps.progress import EpochPrinter, console
from sweeps.reported import (
    DIFFERS,
    EXACT,
    WITHIN,
    ReportedRun,
    Verdict,
    judge,
    printed_figures,
    select,
)
from sweeps.study import SplitsCache
from tracking import Tracker, train_and_end

EXPERIMENT = "reported-runs"


@dataclass(frozen=True)
class Row:
    entry: ReportedRun
    verdict: Verdict
    run_id: str
    corrected: str | None = None  # the headline figure with the faithful switches off


def reproduce_reported(
    ids: str,
    corrected: bool = False,
    data_dir: str | Path | None = None,
    tracking_uri: str | None = None,
    report_file: str | Path | None = None,
) -> list[Row]:
    """Runs the selected entries and prints (and optionally writes) the verdict table."""
    entries = select(ids)  # an unknown id fails before anything runs
    tracker = Tracker(EXPERIMENT, tracking_uri)
    splits_for = SplitsCache(data_dir)
    rows = []
    for entry in entries:
        result, run_id = _run(tracker, entry, entry.config, "faithful", splits_for)
        verdict = judge(entry, printed_figures(result, entry.format))
        tracker.client.set_tag(run_id, "verdict", verdict.label)
        tracker.client.set_tag(run_id, "reproduced.value", verdict.reproduced[entry.headline])
        fixed = None
        if corrected:
            fixed_result, _ = _run(
                tracker, entry, entry.corrected_config(), "corrected", splits_for
            )
            fixed = printed_figures(fixed_result, entry.format)[entry.headline]
        rows.append(Row(entry, verdict, run_id, fixed))
        console.print(
            f"{entry.id}: {entry.headline} reported {entry.reported[entry.headline]}, "
            f"reproduced {verdict.reproduced[entry.headline]} → {verdict.label}"
        )
    console.print(table(rows, corrected))
    if report_file is not None:
        Path(report_file).write_text(markdown(rows, corrected), encoding="utf-8")
        console.print(f"wrote {report_file}", markup=False)
    return rows


def _run(
    tracker: Tracker,
    entry: ReportedRun,
    config: TrainConfig,
    mode: str,
    splits_for: SplitsCache,
) -> tuple[TrainResult, str]:
    tags = {
        "mnist_sweeps.role": "reported",
        "reported.id": entry.id,
        "reported.value": entry.reported[entry.headline],
        "reported.metric": entry.headline,
        "source": f"assignment4-report.md, {entry.section}",
        "mode": mode,
        "model": config.model,
    }
    suffix = "" if mode == "faithful" else f" ({mode})"
    run = tracker.start_run(f"reported-{entry.id}{suffix}", tags=tags)
    printer = EpochPrinter(f"{entry.id}{suffix}", every=max(1, config.epochs // 10))
    result = train_and_end(run, config, splits_for(config), [printer])
    return result, run.id


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


def _short_label(verdict: Verdict) -> str:
    """The table's verdict cell: the details of a difference or a reason go in the notes."""
    return f"{verdict.label} ({verdict.detail})" if verdict.label == WITHIN else verdict.label


def markdown(rows: list[Row], corrected: bool) -> str:
    """The verdict table and each entry's note, as Markdown."""
    head = ["id", "section", "metric", "reported", "reproduced", "verdict"]
    head += ["corrected"] if corrected else []
    lines = [
        "# Reported runs, reproduced",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
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
        lines.append(f"  MLflow run `{row.run_id}`.")
    return "\n".join(lines) + "\n"
