"""Errors shared by every layer.

The split follows KerasTuner: :class:`TrialFailed` ends one trial and the sweep goes on,
anything else stops the sweep. :class:`ConfigError` and :class:`DataError` are raised before
any work starts and carry one line that names the field or file and what was expected.
"""

from __future__ import annotations


class MnistSweepsError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(MnistSweepsError, ValueError):
    """Bad input in a config file, a CLI flag or an override (exit code 2)."""


class DataError(MnistSweepsError):
    """MNIST could not be found, downloaded or read: missing, corrupt or checksum mismatch."""


class TrialFailed(MnistSweepsError):
    """Ends one trial (for example a diverged loss); a sweep records it and goes on."""


class TrainingDiverged(TrialFailed):
    """The training loss became NaN or infinite."""

    def __init__(self, epoch: int, loss: float) -> None:
        super().__init__(f"diverged at epoch {epoch} (train loss {loss})")
        self.epoch = epoch
        self.loss = loss
