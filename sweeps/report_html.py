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
from optuna.trial import TrialState

from sweeps.attrs import CONFIG_ATTR, TARGET_ATTR, TRACKING_ATTR
from sweeps.export import sampler_name
from sweeps.report import draw_study_figures, trial_rows
from sweeps.storage import redact_url
from sweeps.sweep_config import OBJECTIVE

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
    parts += ["<h2>Trials</h2>", _table(trial_rows(trials), best), "</body></html>"]
    return "\n".join(parts) + "\n"


def _summary(
    study: optuna.Study, storage: str, trials: list[Any], best: Any | None
) -> dict[str, str]:
    counts = Counter(t.state.name.lower() for t in trials)
    tracking = study.user_attrs.get(TRACKING_ATTR) or {}
    objective = study.user_attrs.get("objective", OBJECTIVE)
    summary = {
        "objective": f"{study.direction.name.lower()} {objective}",
        "trials": ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none yet",
        "trials target": str(study.user_attrs.get(TARGET_ATTR, "-")),
        "sampler": sampler_name(study),
        "storage": redact_url(storage),
        "best value": f"{best.value:.4f} (trial {best.number})" if best else "-",
    }
    if tracking:
        summary["MLflow"] = (
            f"experiment {tracking.get('experiment', '-')} at "
            f"{redact_url(tracking.get('tracking_uri') or 'a store not recorded')}"
        )
    return summary


def _best(trial: Any) -> dict[str, str]:
    best = {"trial": str(trial.number), OBJECTIVE: f"{trial.value:.4f}"}
    if "test_accuracy" in trial.user_attrs:
        best["test_accuracy"] = f"{trial.user_attrs['test_accuracy']:.4f}"
    best.update({name: _cell(value) for name, value in trial.params.items()})
    if "mlflow_run_id" in trial.user_attrs:
        best["MLflow run"] = str(trial.user_attrs["mlflow_run_id"])
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


def _table(rows: list[dict[str, Any]], best: Any | None) -> str:
    if not rows:
        return "<p>No trials yet.</p>"
    columns = list(rows[0])
    head = "".join(f"<th>{_e(_header(c))}</th>" for c in columns)
    body = []
    for row in rows:
        marked = ' class="best"' if best is not None and row["number"] == best.number else ""
        cells = "".join(_td(row[c]) for c in columns)
        body.append(f"<tr{marked}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _header(column: str) -> str:
    return column.removeprefix("params_").removeprefix("user_attrs_")


def _td(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f'<td class="num">{_e(_cell(value))}</td>'
    return f"<td>{_e('' if value is None else str(value))}</td>"


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


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
