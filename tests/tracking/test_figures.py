"""Figures render off-screen and show what they claim."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer

from mnist_models.callbacks import EpochResult
from mnist_models.metrics import evaluate_scores
from mnist_models.stats import summarise
from tracking.figures import (
    confusion_matrix_figure,
    curves_figure,
    intervals_figure,
    misclassified_figure,
)


def _evaluation():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    scores = rng.random((200, 10)).astype(np.float32)
    scores[np.arange(150), labels[:150]] += 2  # 150 right, the rest mostly wrong
    return evaluate_scores(labels, scores, loss=0.5)


def test_confusion_matrix_annotates_every_cell_with_counts() -> None:
    evaluation = _evaluation()
    figure = confusion_matrix_figure(evaluation)
    axes = figure.axes[0]
    texts = [t.get_text() for t in axes.texts]
    assert len(texts) == 100
    assert sum(int(t) for t in texts) == 200
    assert f"{evaluation.accuracy:.4f}" in axes.get_title()


def test_confusion_matrix_is_drawn_true_digits_down_predictions_across() -> None:
    # One-way errors (3 read as 5 three times, 7 as 9 once): a transposed drawing differs.
    labels = np.array([0, 0, 3, 3, 3, 3, 5, 5, 7, 8])
    predicted = np.array([0, 0, 3, 5, 5, 5, 5, 5, 9, 8])
    evaluation = evaluate_scores(labels, np.eye(10, dtype=np.float32)[predicted], loss=0.1)
    axes = confusion_matrix_figure(evaluation).axes[0]
    assert axes.get_ylabel() == "True label" and axes.get_xlabel() == "Predicted label"
    (image,) = axes.get_images()
    drawn = np.asarray(image.get_array())
    assert drawn[3, 5] == 3 and drawn[5, 3] == 0 and drawn[7, 9] == 1 and drawn[9, 7] == 0
    np.testing.assert_array_equal(drawn, evaluation.confusion)
    assert image.origin == "upper" and axes.get_ylim() == (9.5, -0.5)  # digit 0 on top
    for ticks in (axes.get_xticklabels(), axes.get_yticklabels()):
        assert [t.get_text() for t in ticks] == [str(d) for d in range(10)]
    # Each cell's number sits at (x = predicted, y = true).
    cells = {tuple(map(int, t.get_position())): t.get_text() for t in axes.texts}
    assert cells[(5, 3)] == "3" and cells[(3, 5)] == "0" and cells[(9, 7)] == "1"
    assert all(text == str(drawn[y, x]) for (x, y), text in cells.items())


def test_curves_plot_train_and_validation() -> None:
    history = [
        EpochResult(e, 1 / e, 0.5 + e / 10, 1.2 / e, 0.45 + e / 10, 1e-3, 1.0) for e in (1, 2, 3)
    ]
    figure = curves_figure(history)
    loss_axes, accuracy_axes = figure.axes
    assert [line.get_label() for line in loss_axes.lines] == ["train", "validation"]
    np.testing.assert_allclose(loss_axes.lines[0].get_ydata(), [1, 0.5, 1 / 3])
    np.testing.assert_allclose(loss_axes.lines[1].get_ydata(), [1.2, 0.6, 0.4])
    assert (loss_axes.get_ylabel(), accuracy_axes.get_ylabel()) == ("loss", "accuracy")
    train, validation = accuracy_axes.lines
    np.testing.assert_allclose(train.get_ydata(), [0.6, 0.7, 0.8])
    np.testing.assert_allclose(validation.get_ydata(), [0.55, 0.65, 0.75])
    np.testing.assert_array_equal(validation.get_xdata(), [1, 2, 3])  # epochs count from 1


def test_misclassified_grid_shows_the_most_confident_errors() -> None:
    evaluation = _evaluation()
    images = np.random.default_rng(1).random((200, 28, 28))
    figure = misclassified_figure(images, evaluation, count=10)
    (axes,) = figure.axes  # one mosaic, one caption per digit
    titles = [text.get_text() for text in axes.texts]
    assert len(titles) == 10
    (mosaic,) = axes.get_images()
    pixels = np.asarray(mosaic.get_array())
    first_tile = images[titles_index(titles[0])].astype(np.float32)
    assert np.array_equal(pixels[10:38, 0:28], first_tile)  # top-left tile: the worst error
    wrong = np.flatnonzero(evaluation.predictions != evaluation.labels)
    confidence = evaluation.scores[wrong, evaluation.predictions[wrong]]
    first = wrong[np.argmax(confidence)]
    assert titles[0].startswith(f"#{first} true {evaluation.labels[first]}")


def titles_index(title: str) -> int:
    """The test-set index a caption names: ``#17 true 3 pred 5`` -> 17."""
    return int(title.split()[0].lstrip("#"))


def test_intervals_figure_draws_each_interval_and_no_bar_for_a_single_run() -> None:
    first, second = summarise([0.97, 0.98, 0.975]), summarise([0.95, 0.97, 0.96, 0.99])
    single, test = summarise([0.96]), summarise([0.965, 0.97, 0.972])
    series = {"validation": [first, single, second], "test": [test, None, None]}
    figure = intervals_figure(["trial 4", "trial 1", "trial 7"], series, "top trials")
    (axes,) = figure.axes
    assert axes.get_title() == "top trials"
    assert [t.get_text() for t in axes.get_xticklabels()] == ["trial 4", "trial 1", "trial 7"]
    bars = [c for c in axes.containers if isinstance(c, ErrorbarContainer)]
    assert [c.get_label() for c in bars] == ["validation (mean, 95% CI)", "test (mean, 95% CI)"]
    validation, beside = bars
    (segments,) = [lines.get_segments() for lines in validation.lines[2]]
    # One vertical bar per interval, from its low to its high end, in slots 0 and 2.
    assert len(segments) == 2
    for segment, slot, summary in zip(segments, (0, 2), (first, second), strict=True):
        (x0, low), (x1, high) = segment
        assert x0 == x1 and abs(x0 - slot) < 0.5
        assert (low, high) == pytest.approx((summary.low, summary.high))
    np.testing.assert_allclose(validation.lines[0].get_ydata(), [first.mean, second.mean])
    (test_segment,) = beside.lines[2][0].get_segments()
    assert tuple(test_segment[:, 1]) == pytest.approx((test.low, test.high))
    assert abs(test_segment[0, 0] - segments[0][0, 0]) > 0.1  # side by side, not on top
    # The single run: a hollow point at its value, drawn without any bar.
    (point,) = [line for line in axes.lines if line.get_label().endswith("no interval)")]
    assert point.get_label() == "validation (single run: no interval)"
    assert point.get_markerfacecolor() == "none"
    np.testing.assert_allclose(point.get_ydata(), [0.96])
    assert abs(point.get_xdata()[0] - 1) < 0.5
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert sorted(legend) == sorted([c.get_label() for c in bars] + [point.get_label()])


def test_intervals_figure_needs_one_summary_per_label() -> None:
    with pytest.raises(ValueError, match="'test': 1 summaries for 2 labels"):
        intervals_figure(["a", "b"], {"test": [summarise([0.9, 0.91])]}, "t")
