"""A study as one static HTML page: summary, Optuna's plots embedded, the trials table.

For people without an MLflow or Optuna server: the page needs no network and no other file
(figures are inline PNG data), so it can be mailed, attached to a ticket or opened offline.
"""

from __future__ import annotations

import base64
import html
import os
import re
import tempfile
from collections import Counter
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from mnist_models.stats import CONFIDENCE, Summary
from sweeps.results.report import (
    INTERVAL_COLUMNS,
    draw_study_figures,
    trial_rows,
)
from sweeps.results.studies import sampler_name
from sweeps.spec.sweep_file import OBJECTIVE
from sweeps.store.keys import (
    CONFIG_ATTR,
    OBJECTIVE_ATTR,
    RUN_ID_ATTR,
    TARGET_ATTR,
    TEST_ACCURACY_ATTR,
    TEST_REPEATS_ATTR,
    TRACKING_ATTR,
)
from sweeps.store.ranking import param_text, trial_summary, value_text
from sweeps.store.storage import redact_url

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { margin-top: 1.6em; }
table { border-collapse: collapse; } td, th { padding: 3px 9px; border-bottom: 1px solid #ddd; }
th { text-align: left; background: #f4f4f4; } td.num { text-align: right; }
tr.best td { background: #e8f4e8; font-weight: 600; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; }
dt { color: #666; } dd { margin: 0; } figure { margin: 1em 0; } img { max-width: 100%; }
.muted { color: #777; } code { background: #f4f4f4; padding: 0 3px; }
"""


def write_study_page(study: optuna.Study, folder: Path, storage: str) -> Path:
    """Writes ``<folder>/<study>.html``, whole or not at all.

    Args:
        study: The study to describe.
        folder: Output folder, created if missing.
        storage: The study's storage URL, shown with its password redacted.

    Returns:
        The page's path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="study-page-") as tmp:
        figures = {path.stem: path.read_bytes() for path in draw_study_figures(study, Path(tmp))}
    page = render_study_page(study, storage, figures)
    path = folder / f"{re.sub(r'[^A-Za-z0-9._-]+', '_', study.study_name)}.html"
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(page, encoding="utf-8")
    os.replace(partial, path)  # a reader never sees half a page
    return path


def render_study_page(study: optuna.Study, storage: str, figures: dict[str, bytes]) -> str:
    """The page's HTML; ``figures`` maps each plot's name to its PNG bytes."""
    trials = study.get_trials(deepcopy=False)
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    best = max(completed, key=lambda t: t.value or 0.0) if completed else None
    title = f"Study {study.study_name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="muted">{_e(_generated())}</p>',
        "<h2>Summary</h2>",
        _definitions(_summary(study, storage, trials, best)),
    ]
    if best is not None:
        parts += ["<h2>Best trial</h2>", _definitions(_best(best))]
    space = _search_space(study)
    if space:
        parts += ["<h2>Search space</h2>", _space_table(space)]
    if figures:
        parts.append("<h2>Figures</h2>")
        for name, png in figures.items():
            data = base64.b64encode(png).decode("ascii")
            caption = name.replace("_", " ")
            parts.append(
                f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}"></figure>'
            )
    parts += ["<h2>Trials</h2>", _table(trials, best), "</body></html>"]
    return "\n".join(parts) + "\n"


def _summary(
    study: optuna.Study, storage: str, trials: list[Any], best: Any | None
) -> dict[str, str]:
    counts = Counter(t.state.name.lower() for t in trials)
    tracking = study.user_attrs.get(TRACKING_ATTR) or {}
    objective = study.user_attrs.get(OBJECTIVE_ATTR, OBJECTIVE)
    summary = {
        "objective": f"{study.direction.name.lower()} {objective}",
        "trials": ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none yet",
        "trials target": str(study.user_attrs.get(TARGET_ATTR, "-")),
        "sampler": sampler_name(study),
        "storage": redact_url(storage),
        "best value": f"{value_text(best)} (trial {best.number})" if best else "-",
    }
    if tracking:
        summary["MLflow"] = (
            f"experiment {tracking.get('experiment', '-')} at "
            f"{redact_url(tracking.get('tracking_uri') or 'a store not recorded')}"
        )
    return summary


def _best(trial: FrozenTrial) -> dict[str, str]:
    best = {"trial": str(trial.number), OBJECTIVE: value_text(trial)}
    value, test = trial_summary(trial), trial_summary(trial, TEST_REPEATS_ATTR)
    if value is not None:
        best[f"{OBJECTIVE} {_level(value)} CI"] = _interval(value)
        best["repeats"] = str(value.n)
    if test is not None:
        best["test_accuracy"] = test.text()
        best[f"test_accuracy {_level(test)} CI"] = _interval(test)
    elif TEST_ACCURACY_ATTR in trial.user_attrs:
        best["test_accuracy"] = f"{trial.user_attrs[TEST_ACCURACY_ATTR]:.4f}"
    best.update({name: param_text(value) for name, value in trial.params.items()})
    if RUN_ID_ATTR in trial.user_attrs:
        best["MLflow run"] = str(trial.user_attrs[RUN_ID_ATTR])
    return best


def _search_space(study: optuna.Study) -> dict[str, dict[str, Any]]:
    """The searched parameters as the study stored them (``SearchSpace.to_dict``)."""
    stored = study.user_attrs.get(CONFIG_ATTR)
    return dict(stored.get("space", {})) if isinstance(stored, dict) else {}


def _space_table(space: dict[str, dict[str, Any]]) -> str:
    """One row per searched parameter: name, type, range or choices, log (and grid values,
    when the study has any)."""
    has_grid = any("grid" in spec for spec in space.values())
    columns = ["parameter", "type", "range or choices", "log"] + ["grid"] * has_grid
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for name, spec in space.items():
        if "choices" in spec:
            span = ", ".join(map(_space_value, spec["choices"]))
        else:
            span = f"{_space_value(spec.get('low'))} to {_space_value(spec.get('high'))}"
        cells = [name, str(spec.get("type", "")), span, _space_value(spec.get("log"))]
        if has_grid:
            cells.append(", ".join(map(_space_value, spec.get("grid", []))))
        body.append("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _space_value(value: Any) -> str:
    """As the sweep file writes it: ``true``, ``0.001``, ``64``; nothing for ``None``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


# Display-only columns of a study with repeated trials: the interval as one cell each.
VALUE_CI, TEST_CI = "value_ci", "test_accuracy_ci"
HEADERS = {VALUE_CI: f"value {CONFIDENCE:.0%} CI", TEST_CI: f"test_accuracy {CONFIDENCE:.0%} CI"}


def _table(trials: list[FrozenTrial], best: Any | None) -> str:
    """The trials table; with repeated trials, value and test accuracy read ``mean ± half``.

    A study trained once per trial gets the table it always had: no interval columns, which
    would all be empty.
    """
    rows = trial_rows(trials)
    if not rows:
        return "<p>No trials yet.</p>"
    columns = [c for c in rows[0] if c not in INTERVAL_COLUMNS]
    repeated = any(row["repeats"] for row in rows)
    if repeated:
        for after, added in (
            ("value", [VALUE_CI, "repeats"]),
            ("user_attrs_test_accuracy", [TEST_CI]),
        ):
            at = columns.index(after) + 1
            columns[at:at] = added
    head = "".join(f"<th>{_e(_header(c))}</th>" for c in columns)
    body = []
    for trial, row in zip(trials, rows, strict=True):
        marked = ' class="best"' if best is not None and row["number"] == best.number else ""
        shown = dict(row)
        if repeated:
            shown.update(_interval_cells(trial))
        cells = "".join(_td(shown[c]) for c in columns)
        body.append(f"<tr{marked}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _interval_cells(trial: FrozenTrial) -> dict[str, Any]:
    """The cells a repeated trial shows in place of its numbers (nothing for a single run)."""
    cells: dict[str, Any] = {VALUE_CI: None, TEST_CI: None}
    value, test = trial_summary(trial), trial_summary(trial, TEST_REPEATS_ATTR)
    if value is not None:
        cells.update({"value": _Num(value.text()), VALUE_CI: _Num(_interval(value))})
    if test is not None:
        cells.update(
            {"user_attrs_test_accuracy": _Num(test.text()), TEST_CI: _Num(_interval(test))}
        )
    return cells


class _Num(str):
    """Text of a number (``0.9801 ± 0.0009``), right-aligned like the numbers it stands for."""


def _interval(summary: Summary) -> str:
    return f"{summary.low:.4f} to {summary.high:.4f}"


def _level(summary: Summary) -> str:
    return f"{summary.confidence:.0%}"


def _header(column: str) -> str:
    return HEADERS.get(column) or column.removeprefix("params_").removeprefix("user_attrs_")


def _td(value: Any) -> str:
    if isinstance(value, _Num):
        return f'<td class="num">{_e(value)}</td>'
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="num">{_e(param_text(value))}</td>'
    return f"<td>{_e('' if value is None else str(value))}</td>"


def _definitions(items: dict[str, str]) -> str:
    rows = "".join(f"<dt>{_e(key)}</dt><dd>{_e(value)}</dd>" for key, value in items.items())
    return f"<dl>{rows}</dl>"


def _generated() -> str:
    try:
        ours = f"mnist-sweeps {version('mnist-sweeps')}"
    except PackageNotFoundError:
        ours = "mnist-sweeps"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"Generated {stamp} by {ours} with Optuna {optuna.__version__}"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
