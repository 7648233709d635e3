"""Reading studies back: ``mnist-sweep studies`` lists a storage, ``best`` exports a config.

Both only read: a storage that does not exist is reported, never created.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.table import Table
from rich.text import Text

from mnist_models.config import TrainConfig
from mnist_models.errors import ConfigError
from sweeps.console import console
from sweeps.spec.sweep_file import OBJECTIVE
from sweeps.store.keys import CONFIG_ATTR, SAMPLER_ATTR
from sweeps.store.ranking import rank, ranking_lines, trial_summary, value_text
from sweeps.store.storage import default_storage, local_path, open_storage, redact_url, storage_kind

STATES = tuple(TrialState[name] for name in ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING"))
STORAGE_HELP = "Optuna storage (default: sqlite:///optuna.db in the working folder)"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``mnist-sweep studies`` and ``mnist-sweep best`` to the CLI's subcommands."""
    studies = commands.add_parser(
        "studies",
        help="list the studies of an Optuna storage",
        description="List every study in the storage: trials by state, best value and params.",
    )
    studies.add_argument("--storage", metavar="URL", help=STORAGE_HELP)
    studies.set_defaults(handler=cmd_studies)
    best = commands.add_parser(
        "best",
        help="write the best trial's complete config as a TOML file",
        description="Write the resolved config of a study's best trial as a TOML file that "
        "`mnist-sweep train --config FILE` trains again unchanged.",
    )
    best.add_argument("--study", required=True, metavar="NAME", help="study name")
    best.add_argument("--storage", metavar="URL", help=STORAGE_HELP)
    best.add_argument(
        "--output", default="best.toml", metavar="FILE", help="file to write (default: best.toml)"
    )
    confirm = best.add_argument_group(
        "confirmation",
        "values from the search are biased upward by the selection: --confirm retrains the top "
        "trials on fresh seeds, never used by the search, and picks on those",
    )
    confirm.add_argument(
        "--confirm",
        type=int,
        metavar="K",
        help="retrain the top trials K times each on K fresh seeds (K >= 2), pick the best by "
        "their mean and write its confirmed mean ± CI into the file",
    )
    confirm.add_argument(
        "--top",
        type=int,
        default=3,
        metavar="M",
        help="how many of the best trials --confirm retrains (default 3)",
    )
    confirm.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder with the four MNIST IDX files (default: $MNIST_DIR, then the cache, ...)",
    )
    confirm.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI of the confirmation runs (default: the study's)",
    )
    confirm.add_argument(
        "--experiment", metavar="NAME", help="MLflow experiment (default: the study's)"
    )
    best.set_defaults(handler=cmd_best)


def open_existing_storage(url: str | None) -> tuple[str, optuna.storages.BaseStorage]:
    """Opens a storage that must already exist; returns its URL and the storage.

    Raises:
        ConfigError: For a bad URL, a missing or non-Optuna file, a missing database driver
            or a server that cannot be reached, naming the URL with its password redacted.
    """
    url = url or default_storage()
    storage_kind(url)
    shown = redact_url(url)
    local = local_path(url)
    if local is not None and not local.is_file():
        raise ConfigError(f"--storage {shown!r}: no Optuna storage at {local} (nothing created)")
    if local is not None and url.startswith("sqlite") and _not_optuna(local):
        raise ConfigError(f"--storage {shown!r}: {local} is not an Optuna storage")
    return url, open_storage(url)  # a driver or server error is its one-line ConfigError


def _not_optuna(path: Path) -> bool:
    """Whether a SQLite file surely lacks Optuna's tables (opening it would add them).

    Checked read-only; a file that cannot be read that way (locked, say) is left to Optuna.
    """
    read_only = f"{path.resolve().as_uri()}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(read_only, uri=True)) as db:
            found = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'studies'").fetchone()
    except sqlite3.OperationalError:
        return False
    except sqlite3.DatabaseError:  # not a SQLite file at all
        return True
    return found is None


def load_study(name: str, url: str, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Loads study ``name``; an unknown name is a ConfigError listing the known ones."""
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        known = ", ".join(sorted(optuna.get_all_study_names(storage))) or "none"
        raise ConfigError(
            f"--study {name!r}: no such study in {redact_url(url)!r} (studies: {known})"
        ) from None


def best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best completed trial of a single-objective study, or ``None``."""
    if len(study.directions) > 1:
        return None
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    return study.best_trial


def cmd_studies(args: argparse.Namespace) -> int:
    """Prints one table row per study in ``--storage``."""
    url, storage = open_existing_storage(args.storage)
    names = sorted(optuna.get_all_study_names(storage))
    if not names:
        console.print(f"no studies in {redact_url(url)}", markup=False)
        return 0
    console.print(f"{len(names)} studies in {redact_url(url)}", markup=False)
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
            params = Text("\n".join(f"{k}={_short(v)}" for k, v in best.params.items()))
            table.add_row(Text(name), sampler, trials, value, params)
    console.print(table)
    return 0


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


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def cmd_best(args: argparse.Namespace) -> int:
    """Writes the best trial's config of ``--study`` to ``--output``; with ``--confirm``, the
    config that wins a retraining of the top trials on fresh seeds."""
    if args.confirm is not None and args.confirm < 2:
        raise ConfigError(f"--confirm {args.confirm}: expected >= 2 fresh seeds")
    if args.top < 1:
        raise ConfigError(f"--top {args.top}: expected >= 1")
    url, storage = open_existing_storage(args.storage)
    study = load_study(args.study, url, storage)
    best = best_trial(study)
    if best is None:
        states = ", ".join(state_counts(study)) or "no trials"
        raise ConfigError(f"--study {args.study!r}: no completed trial yet ({states})")
    path = Path(args.output)
    if not path.parent.is_dir():
        raise ConfigError(f"--output {args.output}: folder {path.parent} does not exist")
    ranking = rank(study.get_trials(deepcopy=False))
    assert ranking is not None  # the study has a completed trial
    for line in ranking_lines(ranking):
        console.print(line, markup=False)
    confirmed: list[str] = []
    value = value_text(best)
    if args.confirm is not None:
        from sweeps.verify.confirm import confirm, confirmation_lines  # trains: loads the models

        result = confirm(
            study, args.confirm, args.top, args.data_dir, args.tracking_uri, args.experiment
        )
        confirmed = confirmation_lines(result)
        for line in confirmed:
            console.print(line, markup=False)
        best = result.winner.trial
        value = f"{result.winner.val.text()} on {args.confirm} fresh seeds"
    text = best_toml(study.study_name, url, best, confirmed)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--output {args.output}: cannot write ({exc.strerror})") from None
    console.print(
        f"wrote {path}: trial {best.number} of study {study.study_name} ({OBJECTIVE} "
        f"{value}); train it again with: mnist-sweep train --config {path}",
        markup=False,
    )
    return 0


def best_toml(study: str, url: str, trial: FrozenTrial, confirmed: Sequence[str] = ()) -> str:
    """The trial's resolved config as TOML, under a comment header saying where it came from.

    Raises:
        ConfigError: If the trial has no valid ``config`` user attr (not run by mnist-sweep).
    """
    stored = trial.user_attrs.get("config")
    where = f"study {study!r} trial {trial.number}"
    if not isinstance(stored, dict):
        raise ConfigError(f"--study {study!r}: {where} has no 'config' user attr to export")
    config = TrainConfig.from_dict(stored, source=where)
    header = [
        f"Best trial of Optuna study {study!r} in {redact_url(url)}",
        f"trial {trial.number}: {OBJECTIVE} = {trial.value!r}"
        + (f" (mean of its repeats: {value_text(trial)})" if trial_summary(trial) else ""),
        *confirmed,
        f"MLflow run: {trial.user_attrs.get('mlflow_run_id', 'unknown')}",
        "params: " + ", ".join(f"{k} = {v!r}" for k, v in trial.params.items()),
        "train it again: mnist-sweep train --config <this file>",
    ]
    comments = "".join(f"# {' '.join(line.split())}\n" for line in header)
    return comments + "\n" + config.to_toml()
