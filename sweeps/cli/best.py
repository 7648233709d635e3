"""``mnist-sweep best``: write a study's best trial as a config file ``train`` trains again.

Only reads the study: a storage that does not exist is reported, never created.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mnist_models.errors import ConfigError
from sweeps.cli.common import (
    data_dir_parser,
    experiment_parser,
    storage_parser,
    tracking_uri_parser,
)
from sweeps.console import console
from sweeps.results.best import best_toml
from sweeps.results.studies import best_trial, state_counts
from sweeps.spec.sweep_file import OBJECTIVE
from sweeps.store.ranking import rank, ranking_lines, value_text
from sweeps.store.storage import (
    default_storage,
    load_existing_study,
    open_existing_storage,
)

HELP = "write the best trial's complete config as a TOML file"
DESCRIPTION = (
    "Write the resolved config of a study's best trial as a TOML file that "
    "`mnist-sweep train --config FILE` trains again unchanged."
)
# --data-dir, --tracking-uri and --experiment are those of --confirm's runs.
PARENTS = (
    storage_parser(),
    data_dir_parser(),
    tracking_uri_parser(default="the study's"),
    experiment_parser(default="the study's"),
)
AFTER_STOP = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the study, the output file and the confirmation by retraining."""
    parser.add_argument("--study", required=True, metavar="NAME", help="study name")
    parser.add_argument(
        "--output", default="best.toml", metavar="FILE", help="file to write (default: best.toml)"
    )
    confirm = parser.add_argument_group(
        "confirmation",
        "values from the search are biased upward by the selection: --confirm retrains the top "
        "trials on fresh seeds, never used by the search, and picks on those (its runs go to "
        "--tracking-uri and --experiment, the data come from --data-dir)",
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


def run(args: argparse.Namespace) -> int:
    """Writes the best trial's config of ``--study`` to ``--output``; with ``--confirm``, the
    config that wins a retraining of the top trials on fresh seeds.

    Raises:
        ConfigError: For bad flags, a missing storage or study, or a study without a
            completed trial.
    """
    if args.confirm is not None and args.confirm < 2:
        raise ConfigError(f"--confirm {args.confirm}: expected >= 2 fresh seeds")
    if args.top < 1:
        raise ConfigError(f"--top {args.top}: expected >= 1")
    url = args.storage or default_storage()
    study = load_existing_study(args.study, url, open_existing_storage(url, reads_only=True))
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
