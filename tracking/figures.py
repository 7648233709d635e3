"""Figures for runs: confusion matrix, learning curves, worst misclassified test digits.

Built on :class:`matplotlib.figure.Figure` directly (no pyplot state, Agg canvas), so a long
sweep never accumulates open figures and never needs a display.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import ConfusionMatrixDisplay

from mnist_models.callbacks import EpochResult
from mnist_models.metrics import Evaluation


def confusion_matrix_figure(evaluation: Evaluation, title: str = "Test confusion matrix") -> Figure:
    """Counts per (true, predicted) digit, with the accuracy in the title."""
    figure = Figure(figsize=(6.4, 5.6), layout="constrained")
    axes = figure.add_subplot()
    ConfusionMatrixDisplay(evaluation.confusion, display_labels=list(range(10))).plot(
        ax=axes, cmap="Blues", colorbar=False, values_format="d"
    )
    axes.set_title(f"{title} (accuracy {evaluation.accuracy:.4f}, n={len(evaluation.labels)})")
    return figure


def curves_figure(history: Sequence[EpochResult]) -> Figure:
    """Loss and accuracy per epoch, training beside validation."""
    figure = Figure(figsize=(10, 4), layout="constrained")
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    epochs = [event.epoch for event in history]
    for axes, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        axes.plot(epochs, [getattr(e, f"train_{metric}") for e in history], "o-", label="train")
        axes.plot(epochs, [getattr(e, f"val_{metric}") for e in history], "o-", label="validation")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend()
    return figure


def misclassified_figure(
    images: np.ndarray, evaluation: Evaluation, count: int = 25, columns: int = 5
) -> Figure:
    """The test digits misclassified with the highest confidence, with true/predicted labels."""
    wrong = np.flatnonzero(evaluation.predictions != evaluation.labels)
    confidence = evaluation.scores[wrong, evaluation.predictions[wrong]]
    worst = wrong[np.argsort(-confidence, kind="stable")][:count]
    rows = max(1, -(-len(worst) // columns))
    figure = Figure(figsize=(1.6 * columns, 1.8 * rows), layout="constrained")
    axes_grid = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for axes in axes_grid:
        axes.axis("off")
    for axes, index in zip(axes_grid, worst, strict=False):
        axes.imshow(images[index].reshape(28, 28), cmap="gray_r")
        axes.set_title(
            f"#{index} true {evaluation.labels[index]} pred {evaluation.predictions[index]}",
            fontsize=8,
        )
    figure.suptitle(f"{len(worst)} most confident errors of {len(wrong)}")
    return figure
