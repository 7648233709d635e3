"""A finished run's figures printed the way the course report's numpy notebook printed them.

The notebook (chapter 8 of *Grokking Deep Learning*) printed accuracies with ``str()`` in full
(``0.7073``, ``1.0``) and errors as ``str(value)[0:5]``: truncated to five characters, not
rounded (``0.10899`` prints as ``0.108``). Comparing these strings, rather than rounded floats,
is what makes a re-run's agreement with the published figures exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # training imports the models; this module only reads a result
    from mnist_models.training import TrainResult

FIGURES = ("train_error", "train_accuracy", "test_error", "test_accuracy")


def truncated(value: float) -> str:
    """``str(value)[0:5]``: the notebook's printing of an error (truncated, never rounded)."""
    return str(float(value))[0:5]


def in_full(value: float) -> str:
    """``str(value)``: the notebook's printing of an accuracy (``0.7073``, ``1.0``)."""
    return str(float(value))


def printed_figures(result: TrainResult) -> dict[str, str]:
    """The four figures the notebook printed after its last epoch.

    ``train_error`` and ``train_accuracy`` are the last epoch's training loss and accuracy
    (the summed squared error and correct count over the epoch's batches, divided as
    ``mlp.train_metrics_divisor`` says); ``test_error`` is the summed squared error over the
    test images divided by their number and ``test_accuracy`` the share of them classified
    right, both evaluated once, after training.

    Args:
        result: A finished run with at least one epoch.

    Returns:
        ``train_error``, ``train_accuracy``, ``test_error`` and ``test_accuracy`` as strings.

    Raises:
        ValueError: The run has no epoch.
    """
    if not result.history:
        raise ValueError("the run trained no epoch: there are no figures to print")
    last = result.history[-1]
    return {
        "train_error": truncated(last.train_loss),
        "train_accuracy": in_full(last.train_accuracy),
        "test_error": truncated(result.test.loss),
        "test_accuracy": in_full(result.test.accuracy),
    }
