"""Evaluation of a trained classifier: accuracy, loss, confusion matrix, per-class accuracy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

N_CLASSES = 10


@dataclass(frozen=True)
class Evaluation:
    """Metrics of one model on one labelled set.

    Attributes:
        loss: Mean loss of the model's training objective.
        accuracy: Share of correct predictions.
        confusion: (10, 10) counts, rows are true labels, columns predictions.
        per_class_accuracy: Recall of each digit (NaN for a digit absent from the set).
        labels: The true labels.
        predictions: The predicted labels.
        scores: The model's outputs per class (probabilities or raw scores), for figures.
    """

    loss: float
    accuracy: float
    confusion: np.ndarray
    per_class_accuracy: np.ndarray
    labels: np.ndarray
    predictions: np.ndarray
    scores: np.ndarray

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers (no per-example arrays)."""
        return {
            "loss": self.loss,
            "accuracy": self.accuracy,
            "confusion_matrix": self.confusion.tolist(),
            "per_class_accuracy": [
                None if np.isnan(v) else float(v) for v in self.per_class_accuracy
            ],
            "n": len(self.labels),
        }


def evaluate_scores(labels: np.ndarray, scores: np.ndarray, loss: float) -> Evaluation:
    """Builds an :class:`Evaluation` from true labels and per-class scores (n, 10)."""
    # Imported here: scikit-learn takes seconds to import, which every command (even --help)
    # would pay at start-up; only evaluating a trained model needs it.
    from sklearn.metrics import accuracy_score, confusion_matrix

    predictions = np.asarray(scores).argmax(axis=1)
    confusion = confusion_matrix(labels, predictions, labels=np.arange(N_CLASSES))
    support = confusion.sum(axis=1)
    per_class = np.full(N_CLASSES, np.nan)
    np.divide(np.diag(confusion), support, out=per_class, where=support > 0)
    accuracy = float(accuracy_score(labels, predictions)) if len(labels) else float("nan")
    return Evaluation(
        loss=float(loss),
        accuracy=accuracy,
        confusion=confusion,
        per_class_accuracy=per_class,
        labels=np.asarray(labels),
        predictions=predictions,
        scores=np.asarray(scores),
    )
