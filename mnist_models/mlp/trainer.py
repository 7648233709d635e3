"""Minibatch training of the numpy MLP: seeded shuffling, optional augmentation."""

from __future__ import annotations

import numpy as np

from mnist_models.augment import augment_batch
from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from mnist_models.mlp.layers import Sequential
from mnist_models.mlp.model import build_loss, build_mlp, build_optimizer
from mnist_models.training import Trainer

_EVAL_CHUNK = 8192  # rows scored at once: bounds memory on 60k-image sets


class MLPTrainer(Trainer):
    """Trains :func:`build_mlp` with per-epoch shuffling from a seeded ``Generator``.

    Separate streams (spawned from ``config.seed``) drive weights and dropout, shuffling and
    augmentation, so switching augmentation on does not change the weights or batch order.
    """

    def __init__(self, config: TrainConfig, splits: Splits) -> None:
        super().__init__(config, splits)
        model_seed, shuffle_seed, augment_seed = np.random.SeedSequence(config.seed).spawn(3)
        self._net = build_mlp(config, np.random.default_rng(model_seed))
        self._loss = build_loss(config)
        self._optimizer = build_optimizer(config, self._net.parameters())
        self._shuffle_rng = np.random.default_rng(shuffle_seed)
        self._augment_rng = np.random.default_rng(augment_seed)
        self._images = splits.x_train
        self._flat = splits.x_train.reshape(len(splits.x_train), -1)
        self._labels = splits.y_train

    @property
    def model(self) -> Sequential:
        return self._net

    def train_epoch(self) -> tuple[float, float]:
        n, batch = len(self._labels), self.config.batch_size
        order = self._shuffle_rng.permutation(n)
        total_loss, correct = 0.0, 0
        for start in range(0, n, batch):
            index = order[start : start + batch]
            if self.config.augment:
                warped = augment_batch(
                    self._images[index], self.config.augmentation, self._augment_rng
                )
                inputs = warped.reshape(len(index), -1)
            else:
                inputs = self._flat[index]
            labels = self._labels[index]
            outputs = self._net.forward(inputs, training=True)
            total_loss += self._loss.forward(outputs, labels) * len(index)
            correct += int(np.count_nonzero(outputs.argmax(axis=1) == labels))
            self._net.backward_params(self._loss.backward())  # no unused input gradient
            self._optimizer.step()
        return total_loss / n, correct / n

    def score(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        flat = images.reshape(len(images), -1)
        scores, total_loss = [], 0.0
        for start in range(0, len(flat), _EVAL_CHUNK):
            outputs = self._net.forward(flat[start : start + _EVAL_CHUNK], training=False)
            total_loss += self._loss.forward(outputs, labels[start : start + _EVAL_CHUNK]) * len(
                outputs
            )
            scores.append(self._loss.scores(outputs))
        n = max(len(flat), 1)
        return total_loss / n, np.concatenate(scores) if scores else np.zeros((0, 10))
