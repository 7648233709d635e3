"""Losses over a batch of outputs and integer labels: the mean value and its gradient."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from mnist_models.choices import MSE_GRADIENTS, MSEGradient


class Loss(ABC):
    """Mean loss of ``(batch, classes)`` outputs against ``(batch,)`` integer labels."""

    @abstractmethod
    def forward(self, output: np.ndarray, labels: np.ndarray) -> float:
        """Returns the loss averaged over the batch, remembering what ``backward`` needs."""

    @abstractmethod
    def backward(self) -> np.ndarray:
        """Returns d (mean loss) / d output for the last ``forward``, in the output's dtype."""

    def scores(self, output: np.ndarray) -> np.ndarray:
        """Per-class scores for reports: probabilities where the loss defines them."""
        return output


def _check(output: np.ndarray, labels: np.ndarray) -> np.ndarray:
    if output.ndim != 2 or labels.shape != (len(output),):
        raise ValueError(f"{output.shape=} and {labels.shape=} must be (N, classes) and (N,)")
    return np.arange(len(output))


def _saved(saved: np.ndarray | None, loss: Loss) -> np.ndarray:
    if saved is None:
        raise RuntimeError(f"{type(loss).__name__}.backward called before forward")
    return saved


class MSE(Loss):
    """Squared error against one-hot targets, summed over classes and averaged over the batch.

    The gradient is ``2 (output - onehot) / N``.

    Args:
        gradient: ``exact`` (``2 (output - onehot) / N``) or ``halved`` (faithful mode:
            ``(output - onehot) / N``, the textbook delta ``target - output`` divided by the
            batch size, which is the gradient of half the loss; the value is unchanged).
    """

    def __init__(self, gradient: MSEGradient = "exact") -> None:
        if gradient not in MSE_GRADIENTS:
            raise ValueError(f"{gradient=} must be one of {MSE_GRADIENTS}")
        self.gradient = gradient
        self._diff: np.ndarray | None = None

    def forward(self, output: np.ndarray, labels: np.ndarray) -> float:
        rows = _check(output, labels)
        diff = output.copy()
        diff[rows, labels] -= 1
        self._diff = diff
        flat = diff.reshape(-1)
        return float(flat @ flat) / max(len(output), 1)

    def backward(self) -> np.ndarray:
        diff = _saved(self._diff, self)
        if self.gradient == "halved":
            # A true division, as ``delta / batch_size`` rounds (x / 100 != x * 0.01).
            return diff / max(len(diff), 1)
        return diff * (2.0 / max(len(diff), 1))

    def __repr__(self) -> str:
        return "MSE()" if self.gradient == "exact" else f"MSE(gradient={self.gradient!r})"


class SoftmaxCrossEntropy(Loss):
    """Cross-entropy of ``softmax(output)`` (a numerically stable log-softmax of the logits).

    The gradient is ``(softmax(output) - onehot) / N``.
    """

    def __init__(self) -> None:
        self._probs: np.ndarray | None = None
        self._labels: np.ndarray | None = None

    def forward(self, output: np.ndarray, labels: np.ndarray) -> float:
        rows = _check(output, labels)
        shifted = output - output.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        sums = probs.sum(axis=1, keepdims=True)
        log_likelihood = shifted[rows, labels] - np.log(sums[:, 0])
        probs /= sums
        self._probs, self._labels = probs, labels
        return -float(log_likelihood.mean()) if len(output) else 0.0

    def scores(self, output: np.ndarray) -> np.ndarray:
        probs = np.exp(output - output.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        return probs

    def backward(self) -> np.ndarray:
        grad = _saved(self._probs, self).copy()
        grad[np.arange(len(grad)), self._labels] -= 1
        grad *= 1.0 / max(len(grad), 1)
        return grad

    def __repr__(self) -> str:
        return "SoftmaxCrossEntropy()"
