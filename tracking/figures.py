"""Figures for runs: confusion matrix, learning curves, worst misclassified test digits.

Built on :class:`matplotlib.figure.Figure` directly (no pyplot state, Agg canvas), so a long
sweep never accumulates open figures and never needs a display. matplotlib and scikit-learn
are imported inside the functions that draw: every command would otherwise pay about a second
for them at start-up (``bench/startup.py``), most without drawing anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mnist_models.callbacks import EpochResult
from mnist_models.metrics import Evaluation
from mnist_models.stats import Summary

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _figure(**kwargs: Any) -> Figure:
    """A new :class:`~matplotlib.figure.Figure` (matplotlib imported on the first one)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def confusion_matrix_figure(evaluation: Evaluation, title: str = "Test confusion matrix") -> Figure:
    """Counts per (true, predicted) digit, with the accuracy in the title."""
    from sklearn.metrics import ConfusionMatrixDisplay

    # Fixed margins: constrained layout re-measures every one of the 100 labels, per trial.
    figure = _figure(figsize=(6.4, 5.6))
    axes = figure.add_axes((0.1, 0.09, 0.86, 0.83))
    ConfusionMatrixDisplay(evaluation.confusion, display_labels=list(range(10))).plot(
        ax=axes, cmap="Blues", colorbar=False, values_format="d"
    )
    axes.set_title(f"{title} (accuracy {evaluation.accuracy:.4f}, n={len(evaluation.labels)})")
    return figure


def curves_figure(history: Sequence[EpochResult]) -> Figure:
    """Loss and accuracy per epoch, training beside validation."""
    figure = _figure(figsize=(10, 4))
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
    figure = _figure(figsize=(1.6 * columns, 1.8 * rows + 0.4))
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


def repeats_curves_figure(histories: Sequence[Sequence[dict[str, float]]]) -> Figure:
    """Loss and accuracy per epoch over repeats: the mean as a line, min to max as a band.

    Args:
        histories: One list per repeat of per-epoch metrics (``epoch``, ``train_loss``,
            ``val_accuracy``, ...); epochs reached by only some repeats are left out.
    """
    figure = _figure(figsize=(10, 4))
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.9, wspace=0.22)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    epochs = min(len(history) for history in histories)
    x = [histories[0][i]["epoch"] for i in range(epochs)]
    for axes, metric in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        for split, label in (("train", "train"), ("val", "validation")):
            key = f"{split}_{metric}"
            values = np.array([[h[i][key] for i in range(epochs)] for h in histories])
            if np.isnan(values).all():
                continue
            (line,) = axes.plot(x, values.mean(axis=0), "o-", label=f"{label} (mean)")
            axes.fill_between(
                x, values.min(axis=0), values.max(axis=0), color=line.get_color(), alpha=0.2
            )
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric)
        axes.grid(alpha=0.3)
        axes.legend()
    figure.suptitle(f"mean of {len(histories)} repeats; band: lowest to highest repeat")
    return figure


def intervals_figure(
    labels: Sequence[str],
    series: Mapping[str, Sequence[Summary | None]],
    title: str,
    ylabel: str = "accuracy",
) -> Figure:
    """Means with their confidence intervals as error bars, one slot per label.

    Each series (e.g. validation and test accuracy) is drawn beside the others in every slot.
    A summary of a single run is drawn as a hollow point with no bar, so nothing pretends
    to an interval it does not have; ``None`` leaves the slot empty for that series.

    Args:
        labels: One label per slot (e.g. ``trial 12``), left to right.
        series: Series name to one summary (or ``None``) per label.
        title: The figure's title.
        ylabel: The y axis' label.

    Raises:
        ValueError: When a series does not hold one summary per label.
    """
    for name, summaries in series.items():
        if len(summaries) != len(labels):
            raise ValueError(
                f"series {name!r}: {len(summaries)} summaries for {len(labels)} labels"
            )
    figure = _figure(figsize=(max(6.0, 0.8 * len(labels) + 2.5), 4.5), layout="constrained")
    axes = figure.add_subplot()
    # Dodge the series inside each slot so bars of the same slot never hide one another.
    offsets = np.linspace(-0.15, 0.15, len(series)) if len(series) > 1 else np.zeros(len(series))
    for index, ((name, summaries), offset) in enumerate(zip(series.items(), offsets, strict=True)):
        color = f"C{index}"
        ranged = [(i, s) for i, s in enumerate(summaries) if s is not None and s.has_interval]
        single = [(i, s) for i, s in enumerate(summaries) if s is not None and not s.has_interval]
        if ranged:
            means = np.array([s.mean for _, s in ranged])
            below = means - np.array([s.low for _, s in ranged])
            above = np.array([s.high for _, s in ranged]) - means
            axes.errorbar(
                [i + offset for i, _ in ranged],
                means,
                yerr=np.vstack([below, above]),
                fmt="o",
                capsize=4,
                color=color,
                label=f"{name} (mean, {ranged[0][1].confidence:.0%} CI)",
            )
        if single:
            axes.plot(
                [i + offset for i, _ in single],
                [s.mean for _, s in single],
                "o",
                markerfacecolor="none",
                color=color,
                label=f"{name} (single run: no interval)",
            )
    axes.set_xticks(range(len(labels)), list(labels))
    axes.set_xlim(-0.6, len(labels) - 0.4)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(axis="y", alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
    return figure
