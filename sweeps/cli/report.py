"""``mnist-sweep report``: log a study's plots and trials table to its MLflow parent run."""

from __future__ import annotations

import argparse
from pathlib import Path

from mnist_models.errors import ConfigError
from sweeps.cli.common import experiment_parser, storage_parser, tracking_uri_parser
from sweeps.console import console
from sweeps.results.page import write_study_page
from sweeps.results.report import FOLDER, PLOTS, find_parent_run, log_study_report
from sweeps.store.keys import TRACKING_ATTR
from sweeps.store.storage import (
    default_storage,
    load_existing_study,
    open_existing_storage,
    redact_url,
)
from tracking import Tracker

HELP = "log a study's plots and trials table to its MLflow parent run"
DESCRIPTION = (
    "Draw the study's Optuna plots and trials table and log them under study/ on its MLflow "
    "parent run (a sweep does this when it ends)."
)
PARENTS = (
    storage_parser(),
    tracking_uri_parser(),
    experiment_parser(default="the study's, else its name"),
)
AFTER_STOP = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the study and the folder of its HTML page."""
    parser.add_argument("--study", required=True, metavar="NAME", help="study name")
    parser.add_argument(
        "--output",
        metavar="DIR",
        type=Path,
        help="also write DIR/<study>.html: one self-contained page (figures embedded) that "
        "opens without any server",
    )


def run(args: argparse.Namespace) -> int:
    """Logs the report of ``--study`` to its parent run (and writes ``--output``'s page).

    Raises:
        ConfigError: If the storage or study does not exist, ``--output`` is a file, or the
            MLflow store, experiment or parent run does not exist (without ``--output``, or
            with ``--tracking-uri`` or ``--experiment`` given).
    """
    storage = args.storage or default_storage()
    study = load_existing_study(args.study, storage, open_existing_storage(storage))
    output = getattr(args, "output", None)
    if output is not None and output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output}: expected a folder, found a file")
    stored = study.user_attrs.get(TRACKING_ATTR) or {}  # where `sweep` logged this study
    experiment = args.experiment or stored.get("experiment") or args.study
    tracking_uri = args.tracking_uri or stored.get("tracking_uri")
    try:
        parent: tuple[Tracker, str] | None = find_parent_run(args.study, experiment, tracking_uri)
    except ConfigError as exc:
        # The page is what someone without the MLflow store came for: the store is optional
        # then, unless they named one.
        if output is None or args.tracking_uri or args.experiment:
            raise
        parent, missing = None, exc
    if output is not None:
        page = write_study_page(study, output, storage)
        console.print(f"wrote {page} (open it in any browser)", markup=False)
    if parent is None:
        console.print(f"not logged to MLflow: {missing}", markup=False)
        return 0
    tracker, parent_id = parent
    paths = log_study_report(tracker.client, parent_id, study)
    console.print(
        f"study {study.study_name} in {redact_url(storage)}: logged {', '.join(paths)} to MLflow "
        f"run {parent_id} (experiment '{experiment}' at {redact_url(tracker.tracking_uri)})",
        markup=False,
    )
    skipped = [name for name in PLOTS if f"{FOLDER}/{name}.png" not in paths]
    if skipped:
        console.print(f"not drawn (not enough trials or data yet): {', '.join(skipped)}")
    return 0
