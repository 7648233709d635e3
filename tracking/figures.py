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
    # Fixed margins: constrained layout re-measures every one of the 100 labels, per trial.
    figure = Figure(figsize=(6.4, 5.6))
    axes = figure.add_axes((0.1, 0.09, 0.86, 0.83))
    ConfusionMatrixDisplay(evaluation.confusion, display_labels=list(range(10))).plot(
        ax=axes, cmap="Blues", colorbar=False, values_format="d"
    )
    axes.set_title(f"{title} (accuracy {evaluation.accuracy:.4f}, n={len(evaluation.labels)})")
    return figure


def curves_figure(history: Sequence[EpochResult]) -> Figure:
    """Loss and accuracy per epoch, training beside validation."""
    figure = Figure(figsize=(10, 4))
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.96, wspace=0.22)
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
    """The test digits misclassified with the highest confidence, with true/predicted labels.

    Drawn as one mosaic image with a caption per tile: a grid of 25 subplots costs a
    second or more per trial to lay out and render, the mosaic a tenth of that.
    """
    wrong = np.flatnonzero(evaluation.predictions != evaluation.labels)
    confidence = evaluation.scores[wrong, evaluation.predictions[wrong]]
    worst = wrong[np.argsort(-confidence, kind="stable")][:count]
    rows = max(1, -(-len(worst) // columns))
    tile, gap = 28, 10  # pixels; the gap above each digit holds its caption
    mosaic = np.zeros((rows * (tile + gap), columns * tile + (columns - 1) * 2), np.float32)
    figure = Figure(figsize=(1.6 * columns, 1.8 * rows + 0.4))
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0 - 0.4 / (1.8 * rows + 0.4)))
    for slot, index in enumerate(worst):
        top, left = (slot // columns) * (tile + gap) + gap, (slot % columns) * (tile + 2)
        mosaic[top : top + tile, left : left + tile] = images[index].reshape(tile, tile)
        axes.text(
            left + tile / 2,
            top - 1,
            f"#{index} true {evaluation.labels[index]} pred {evaluation.predictions[index]}",
            ha="center",
            va="bottom",
            fontsize=7,
        )
    axes.imshow(mosaic, cmap="gray_r", interpolation="nearest", aspect="equal")
    axes.axis("off")
    figure.suptitle(f"{len(worst)} most confident errors of {len(wrong)}", y=0.995, va="top")
    return figure
