"""``mnist-sweep studies``: list the studies of an Optuna storage (read only)."""

from __future__ import annotations

import argparse

import optuna

from sweeps.cli.common import storage_parser
from sweeps.console import console
from sweeps.results.studies import studies_table
from sweeps.store.storage import default_storage, open_existing_storage, redact_url

HELP = "list the studies of an Optuna storage"
DESCRIPTION = "List every study in the storage: trials by state, best value and params."
PARENTS = (storage_parser(),)
AFTER_STOP = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds nothing: ``studies`` takes only ``--storage`` (``PARENTS``)."""


def run(args: argparse.Namespace) -> int:
    """Prints one table row per study in ``--storage``.

    Raises:
        ConfigError: If the storage does not exist or cannot be opened.
    """
    url = args.storage or default_storage()
    storage = open_existing_storage(url, reads_only=True)
    names = sorted(optuna.get_all_study_names(storage))
    if not names:
        console.print(f"no studies in {redact_url(url)}", markup=False)
        return 0
    console.print(f"{len(names)} studies in {redact_url(url)}", markup=False)
    console.print(studies_table(storage, names))
    return 0
