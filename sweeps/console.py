"""The one console every layer prints through (rich, on stderr), and Optuna's log lines on it."""

from __future__ import annotations

import logging
import re
import sys

import optuna
from rich.console import Console

from mnist_models.errors import TrialFailed

console = Console(stderr=True, highlight=False, soft_wrap=True)


class _ExpectedTrialEnds(logging.Filter):
    """Drops Optuna's traceback for a trial that ended the way a sweep expects.

    A diverged trial or a Ctrl-C already gets its own one-line message (and the trial's MLflow
    run a ``failure_reason``); Optuna would add a 30-line traceback to each. Failures nobody
    expects keep Optuna's report, traceback included.
    """

    _NO_VALUE = re.compile(r"Trial \d+ failed with value None\.$")

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, (KeyboardInterrupt, TrialFailed)):
            return False
        return not self._NO_VALUE.match(record.getMessage())


class _OptunaConsole(logging.StreamHandler):
    """Optuna's log lines on stderr, as its default handler prints them, less the expected
    trial ends."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("[%(levelname)1.1s %(asctime)s] %(message)s"))
        self.addFilter(_ExpectedTrialEnds())

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # the stderr of now (pytest or rich may have replaced it)
        super().emit(record)


def quiet_expected_trial_ends() -> None:
    """Routes Optuna's log through :class:`_ExpectedTrialEnds` (once per process).

    Optuna's default handler on its library root logger ``optuna`` gives way to ours, which
    prints the same lines at the same verbosity (``optuna.logging.set_verbosity`` still
    applies) but drops the expected trial ends.
    """
    optuna.logging.disable_default_handler()
    root = logging.getLogger("optuna")  # the logger optuna.logging configures
    if not any(isinstance(h, _OptunaConsole) for h in root.handlers):
        root.addHandler(_OptunaConsole())
