"""The tracking failure policy: which store errors are retried, which end a run's logging.

Tracking never costs a result: when the store fails (a server gone, a disk full) after
MLflow's own retries, and after :func:`with_lock_retries` for what concurrent writers cause,
the failure is reported once, as one redacted line (:func:`tracking_failure`), with a
:class:`TrackingUnavailableWarning`, and training goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from mlflow.exceptions import MlflowException

from tracking.redact import redact_text

# What a tracking store raises when it cannot write (HTTP errors are OSErrors); anything else
# is a bug and propagates.
TRACKING_ERRORS: tuple[type[Exception], ...] = (MlflowException, OSError)
_T = TypeVar("_T")


class TrackingUnavailableWarning(UserWarning):
    """The tracking store failed; the run named in the message is incomplete."""


_LOCK_WAITS_S = (0.5, 1.0, 2.0, 4.0, 8.0)  # between attempts, each waiting up to 20 s itself


def with_lock_retries(call: Callable[[], _T]) -> _T:
    """Runs ``call``, retrying with backoff what concurrent writers cause and a retry cures.

    * A locked SQLite store: several workers write one file, and on a loaded machine a writer
      can hold the lock beyond the 20 s MLflow's store waits for it (transient, like a 503).
    * MLflow's SQL store records a dataset by looking it up, then inserting it: two workers
      logging the same dataset at the same instant both insert, and one gets a UNIQUE
      violation. A retry finds the row the other wrote.
    """
    for wait in (*_LOCK_WAITS_S, None):
        try:
            return call()
        except MlflowException as exc:
            if wait is None or not _cured_by_retry(str(exc)):
                raise
            time.sleep(wait)
    raise AssertionError("unreachable")


def _cured_by_retry(message: str) -> bool:
    if "database is locked" in message:
        return True
    return "UNIQUE constraint failed: datasets." in message or (
        "duplicate key" in message and "datasets" in message  # the same race on PostgreSQL
    )


def tracking_failure(what: str, exc: BaseException) -> str:
    """One line, credentials redacted: ``log_epoch: ConnectionError: ...``."""
    # SQLAlchemy may open with a note on autoflush; the cause is the next line.
    lines = [line for line in str(exc).splitlines() if line.strip()] or [""]
    cause = next((line for line in lines if not line.startswith("(raised as a result")), lines[0])
    return redact_text(f"{what}: {type(exc).__name__}: {cause.strip()}")[:500]
