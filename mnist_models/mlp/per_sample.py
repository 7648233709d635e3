"""Per-sample SGD (batches of one) for a one-hidden-layer MLP without biases, made fast.

With one image per step, a pass over 1,000 images is 1,000 strictly sequential updates, so
nothing can be vectorised across steps; what costs is the generic machinery around each tiny
step (a dozen layer calls, and an outer product for the first layer's gradient that
``np.matmul`` computes several times slower than a plain broadcast multiply). This kernel
runs the same arithmetic as :class:`~mnist_models.mlp.layers.Sequential`,
:class:`~mnist_models.mlp.losses.MSE` and :class:`~mnist_models.mlp.optimizers.SGD`,
operation for operation and in the same order, so its weights are bit-identical to theirs
(the tests compare them), with two savings:

- the first layer's update touches only the rows of the image's nonzero pixels: every other
  row would get ``-lr * 0 * g = ±0``, which leaves a weight unchanged;
- no per-layer bookkeeping (saved inputs, ``grad`` buffers): the parameters' ``grad`` arrays
  are not filled in this mode.

The trainer picks it by itself (see :func:`applies`); configurations decide results, never the
kernel.
"""

from __future__ import annotations

import numpy as np

from mnist_models.config import TrainConfig
from mnist_models.mlp.layers import Dropout, Linear, ReLU, Sequential
from mnist_models.mlp.losses import MSE, Loss


def applies(config: TrainConfig) -> bool:
    """Whether :class:`PerSampleSGD` can train ``config`` (with the same results)."""
    mlp = config.mlp
    return (
        config.batch_size == 1
        and not config.augmented
        and len(mlp.hidden_sizes) == 1
        and not mlp.bias
        and mlp.loss == "mse"
        and mlp.optimizer == "sgd"
        and mlp.lr_schedule == "constant"  # the kernel keeps one rate for the whole run
        and mlp.weight_decay == 0.0
    )


class PerSampleSGD:
    """One-image-per-step SGD over ``Linear → ReLU (→ Dropout) → Linear`` without biases.

    Args:
        net: The network built by :func:`~mnist_models.mlp.model.build_mlp`; its weight
            arrays are updated in place.
        loss: Its :class:`MSE` loss (only the gradient convention is read).
        lr: The learning rate.
        fold_lr: Scale the output gradient by ``-lr`` and add the products as they are, as
            :class:`~mnist_models.mlp.optimizers.SGD` with ``fold_lr`` does.

    Raises:
        ValueError: ``net`` or ``loss`` is not of the supported form.
    """

    def __init__(self, net: Sequential, loss: Loss, lr: float, fold_lr: bool = False) -> None:
        layers = list(net)
        dropout = layers[2] if len(layers) == 4 else None
        first, relu, last = layers[0], layers[1], layers[-1]
        if not (
            len(layers) in (3, 4)
            and isinstance(first, Linear)
            and isinstance(relu, ReLU)
            and isinstance(last, Linear)
            and (dropout is None or isinstance(dropout, Dropout))
            and first.bias is None
            and last.bias is None
            and isinstance(loss, MSE)
        ):
            raise ValueError(f"per-sample SGD needs Linear → ReLU (→ Dropout) → Linear, got {net}")
        self._w1, self._w2 = first.weight.value, last.weight.value
        self._relu, self._dropout, self._halved = relu, dropout, loss.gradient == "halved"
        self._neg_lr = -float(lr)
        self._fold_lr = fold_lr
        self._nonzero: tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]] | None = None

    def _nonzero_pixels(self, images: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each image's nonzero pixel indices and values (as a column), found once per run:
        a run visits every image hundreds of times."""
        if self._nonzero is None or self._nonzero[0] is not images:
            found = []
            for image in images:
                rows = np.flatnonzero(image)
                found.append((rows, image[rows, None]))
            self._nonzero = (images, found)
        return self._nonzero[1]

    def epoch(
        self, images: np.ndarray, labels: np.ndarray, order: np.ndarray | None, steps: int
    ) -> tuple[float, int]:
        """Trains on ``steps`` images, one per step, in ``order`` (``None``: as stored).

        Args:
            images: ``(n, features)`` training images in the weights' dtype.
            labels: ``(n,)`` integer labels.
            order: A permutation of the rows, or ``None``.
            steps: How many images to train on.

        Returns:
            The summed loss and the number of correct predictions over the steps.
        """
        w1, w2, neg_lr = self._w1, self._w2, self._neg_lr
        gate_on_input = self._relu.gate == "input"
        dropout = self._dropout
        mask_gradient = dropout is not None and dropout.backward_mode == "masked"
        if dropout is not None:  # the epoch's masks in one draw: the same stream, less overhead
            keep = dropout.keep_masks(steps, (1, w1.shape[1]))
            masks = np.multiply(keep, 1.0 / (1.0 - dropout.rate), dtype=w1.dtype)
        total_loss, correct = 0.0, 0
        nonzero = self._nonzero_pixels(images)
        for step in range(steps):
            i = step if order is None else int(order[step])
            x, label = images[i : i + 1], labels[i]
            # Forward, as Linear, ReLU, Dropout and Linear compute it.
            pre = x @ w1
            positive = pre > 0
            hidden = np.multiply(pre, positive)
            gate = positive if gate_on_input else hidden >= 0
            if dropout is not None:
                mask = masks[step]
                hidden = np.multiply(hidden, mask)
            out = hidden @ w2
            # The loss, as MSE computes it for a batch of one.
            diff = out.copy()
            diff[0, label] -= 1
            flat = diff.reshape(-1)
            total_loss += float(flat @ flat)  # MSE's mean over one image, times one
            correct += int(out[0].argmax() == label)
            grad_out = diff / 1 if self._halved else diff * (2.0 / 1)
            if self._fold_lr:
                grad_out *= neg_lr
            # Backward, with the second layer's weights as they were in the forward pass.
            grad_hidden = grad_out @ w2.T
            grad_w2 = hidden.T @ grad_out
            if mask_gradient:
                grad_hidden = np.multiply(grad_hidden, mask)
            grad_hidden = np.multiply(grad_hidden, gate)
            # SGD: value += grad * -lr, first layer first. Only the rows of nonzero pixels.
            rows, pixels = nonzero[i]
            step_w1 = np.multiply(pixels, grad_hidden)
            if not self._fold_lr:
                step_w1 *= neg_lr
                grad_w2 *= neg_lr
            w1[rows] += step_w1
            w2 += grad_w2
        return total_loss, correct
