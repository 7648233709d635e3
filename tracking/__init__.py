"""Everything MLflow: runs, per-epoch metric batches, figures, artifacts and datasets.

Knows nothing of Optuna: sweeps pass in whatever tags they want on a run.
"""

from tracking.run_logger import (
    RunLogger,
    TrackingUnavailableWarning,
    ended,
    interrupt_reason,
    train_and_end,
    train_logged,
)
from tracking.runs import Tracker

__all__ = [
    "RunLogger",
    "Tracker",
    "TrackingUnavailableWarning",
    "ended",
    "interrupt_reason",
    "train_and_end",
    "train_logged",
]
