"""Everything MLflow: runs, per-epoch metric batches, figures, artifacts and datasets.

Knows nothing of Optuna: sweeps pass in whatever tags they want on a run. Nor does it name any
model: a trainer's ``log_model`` hook says what model (if any) a run keeps.

Modules: :mod:`tracking.runs` (the :class:`Tracker`, creating runs), :mod:`tracking.run_logger`
(writing one run), :mod:`tracking.logged_training` (training into a run and ending it),
:mod:`tracking.failures` (what a store failure does).
"""

from tracking.failures import TrackingUnavailableWarning
from tracking.logged_training import ended, interrupt_reason, train_and_end, train_logged
from tracking.run_logger import RunLogger
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
