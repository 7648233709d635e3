"""What a storage's studies hold: trials by state, sampler, best trial; ``studies``'s table.

Only reads: the storage is opened by the caller (see ``sweeps.store.storage``).
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table
from rich.text import Text

from sweeps.spec.sweep_file import OBJECTIVE
from sweeps.store.keys import CONFIG_ATTR, SAMPLER_ATTR
from sweeps.store.ranking import param_text, value_text

STATES = tuple(TrialState[name] for name in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"))


def studies_table(storage: optuna.storages.BaseStorage, names: list[str]) -> Table:
    """One row per study of ``names``: sampler, trials by state, best value and params."""
    table = Table(show_lines=True)
    table.add_column("study", overflow="fold")
    table.add_column("sampler", no_wrap=True)
    table.add_column("trials", no_wrap=True)
    table.add_column(f"best {OBJECTIVE}", justify="right", no_wrap=True)
    table.add_column("best params", overflow="fold")
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        best = best_trial(study)
        trials = "\n".join(state_counts(study)) or "none"
        sampler = Text(sampler_name(study))
        if best is None:
            table.add_row(Text(name), sampler, trials, "-", "-")
        else:
            value = f"{value_text(best)} (trial {best.number})"
            params = Text("\n".join(f"{k}={param_text(v)}" for k, v in best.params.items()))
            table.add_row(Text(name), sampler, trials, value, params)
    return table


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best completed trial of a single-objective study, or ``None``."""
    if len(study.directions) > 1:
        return None
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial


def sampler_name(study: optuna.Study) -> str:
    """The sampler a study searches with (``tpe``, ``grid``, ...); ``-`` if not ours."""
    stored = study.user_attrs.get(CONFIG_ATTR)
    fallback = stored.get("sweep", {}).get("sampler", "-") if isinstance(stored, dict) else "-"
    return str(study.user_attrs.get(SAMPLER_ATTR, fallback))


def state_counts(study: optuna.Study) -> list[str]:
    """``["3 complete", "1 pruned"]``: trials per state, states without trials left out."""
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == state for t in trials) for state in STATES}
    return [f"{n} {state.name.lower()}" for state, n in counts.items() if n]
