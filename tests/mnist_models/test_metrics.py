"""Evaluation figures on hand-made predictions: every count where the documentation puts it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mnist_models.metrics import Evaluation, evaluate_scores

# (true digit, predicted digit, how many): the errors are deliberately one-way, so a transposed
# matrix (or recall computed over predictions) gives different numbers.
CASES = [
    (0, 0, 4),
    (1, 1, 1),
    (1, 7, 1),
    (2, 2, 2),
    (3, 3, 1),
    (3, 5, 3),
    (5, 5, 2),
    (7, 9, 1),
    (8, 8, 1),
]
# Recall per digit: right / examples of that digit (4, 6 and 9 never occur as a true label).
PER_DIGIT = [1.0, 0.5, 1.0, 0.25, math.nan, 1.0, math.nan, 0.0, 1.0, math.nan]


def hand_made() -> Evaluation:
    labels = np.array([true for true, _, n in CASES for _ in range(n)])
    predicted = np.array([pred for _, pred, n in CASES for _ in range(n)])
    scores = np.full((len(labels), 10), 0.01, np.float32)
    scores[np.arange(len(labels)), predicted] = 0.91
    return evaluate_scores(labels, scores, loss=0.25)


def test_confusion_rows_are_true_digits_and_columns_predictions() -> None:
    evaluation = hand_made()
    expected = np.zeros((10, 10), np.int64)
    for true, pred, n in CASES:
        expected[true, pred] = n
    np.testing.assert_array_equal(evaluation.confusion, expected)
    assert evaluation.confusion[3, 5] == 3 and evaluation.confusion[5, 3] == 0
    assert evaluation.confusion[7, 9] == 1 and evaluation.confusion[9, 7] == 0
    assert evaluation.accuracy == pytest.approx(11 / 16)
    assert evaluation.loss == 0.25


def test_per_digit_accuracy_is_recall_and_nan_for_absent_digits() -> None:
    np.testing.assert_allclose(hand_made().per_class_accuracy, PER_DIGIT, equal_nan=True)


def test_the_summary_logged_as_json_keeps_the_orientation() -> None:
    evaluation = hand_made()
    summary = json.loads(json.dumps(evaluation.summary()))  # what confusion_matrix.json holds
    assert summary["confusion_matrix"][3][5] == 3 and summary["confusion_matrix"][5][3] == 0
    assert summary["confusion_matrix"][1] == [0, 1, 0, 0, 0, 0, 0, 1, 0, 0]
    assert summary["per_class_accuracy"] == [None if math.isnan(v) else v for v in PER_DIGIT]
    assert summary["n"] == 16 and summary["accuracy"] == pytest.approx(11 / 16)
