"""Minibatch training of the numpy MLP: seeded shuffling, optional augmentation, a
learning-rate schedule and L2 weight decay."""

from __future__ import annotations

import numpy as np

from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from mnist_models.errors import ConfigError
from mnist_models.mlp.augment import augment_batch
from mnist_models.mlp.layers import RNG, Sequential
from mnist_models.mlp.model import build_loss, build_mlp, build_optimizer
from mnist_models.mlp.per_sample import PerSampleSGD, applies
from mnist_models.mlp.regularization import add_l2_gradient, decayed_parameters
from mnist_models.mlp.schedules import build_schedule
from mnist_models.trainers import Trainer, register_trainer

_EVAL_CHUNK = 8192  # rows scored at once: bounds memory on 60k-image sets
# Steps between two flushes of subnormal weights and optimizer state under weight decay (see
# Optimizer.flush_subnormals): often enough that few live long, rarely enough to cost ~2%.
_FLUSH_EVERY = 16


@register_trainer("mlp")
class MLPTrainer(Trainer):
    """Trains :func:`build_mlp` with per-epoch shuffling from a seeded ``Generator``.

    Separate streams (spawned from ``config.seed``) drive weights and dropout, shuffling and
    augmentation, so switching augmentation on does not change the weights or batch order.
    With ``mlp.rng = "legacy"`` the weights and dropout masks come instead from one
    ``np.random.RandomState(config.seed)``; ``mlp.shuffle``, ``mlp.drop_last`` and
    ``mlp.train_metrics_divisor`` set how epochs are cut into batches and summarised.

    Each epoch trains at the rate ``mlp.lr_schedule`` gives it (set on the optimizer as the
    epoch starts; the plateau schedule hears each epoch's validation accuracy through
    :meth:`end_of_epoch`). With ``mlp.weight_decay`` the optimizer descends the data loss
    plus the L2 penalty of :mod:`~mnist_models.mlp.regularization`, but the training loss an
    epoch reports is the data loss alone, comparable across weight decays.
    """

    def __init__(self, config: TrainConfig, splits: Splits, per_sample_kernel: bool = True) -> None:
        """Builds the model, loss and optimizer.

        Args:
            config: The run's config.
            splits: The data.
            per_sample_kernel: Let batches of one train through :class:`PerSampleSGD` where
                it applies (the same numbers, faster); off only to compare the two.

        Raises:
            ConfigError: ``mlp.drop_last`` with fewer training images than one batch.
        """
        super().__init__(config, splits)
        mlp = config.mlp
        if mlp.drop_last and len(splits.y_train) < config.batch_size:
            raise ConfigError(
                f"mlp.drop_last=true with batch_size={config.batch_size} and only "
                f"{len(splits.y_train)} training images: no batch would be trained"
            )
        model_seed, shuffle_seed, augment_seed = np.random.SeedSequence(config.seed).spawn(3)
        model_rng: RNG = (
            np.random.RandomState(config.seed)
            if mlp.rng == "legacy"
            else np.random.default_rng(model_seed)
        )
        self._net = build_mlp(config, model_rng)
        self._loss = build_loss(config)
        self._optimizer = build_optimizer(config, self._net.parameters(), fold_lr=True)
        self._schedule = build_schedule(config)
        self._epoch = 0  # epochs trained so far
        self._decayed = decayed_parameters(self._net) if mlp.weight_decay > 0 else []
        self._shuffle_rng = np.random.default_rng(shuffle_seed)
        self._augment_rng = np.random.default_rng(augment_seed)
        self._images = splits.x_train
        self._flat = splits.x_train.reshape(len(splits.x_train), -1)
        self._labels = splits.y_train
        self._per_sample = (
            PerSampleSGD(self._net, self._loss, config.lr, self._optimizer.loss_scale != 1.0)
            if per_sample_kernel and applies(config)
            else None
        )

    @property
    def model(self) -> Sequential:
        return self._net

    @property
    def learning_rate(self) -> float:
        """The rate the coming epoch trains at, as the schedule stands."""
        return self._schedule.rate(self._epoch + 1)

    def end_of_epoch(self, val_accuracy: float) -> None:
        self._schedule.update(self._epoch, val_accuracy)

    def train_epoch(self) -> tuple[float, float]:
        self._epoch += 1
        self._optimizer.lr = self._schedule.rate(self._epoch)  # a folded loss_scale follows
        mlp = self.config.mlp
        n, batch = len(self._labels), self.config.batch_size
        order = self._shuffle_rng.permutation(n) if mlp.shuffle else None
        seen = n - n % batch if mlp.drop_last else n
        divisor = n if mlp.train_metrics_divisor == "train_size" else seen
        if self._per_sample is not None:
            total_loss, correct = self._per_sample.epoch(self._flat, self._labels, order, seen)
            return total_loss / divisor, correct / divisor
        total_loss, correct = 0.0, 0
        for start in range(0, seen, batch):
            index = slice(start, start + batch) if order is None else order[start : start + batch]
            labels = self._labels[index]
            if self.config.augmented:
                warped = augment_batch(
                    self._images[index],
                    self.config.augment,
                    self.config.augmentation,
                    self._augment_rng,
                )
                inputs = warped.reshape(len(labels), -1)
            else:
                inputs = self._flat[index]
            outputs = self._net.forward(inputs, training=True)
            total_loss += self._loss.forward(outputs, labels) * len(labels)
            correct += int(np.count_nonzero(outputs.argmax(axis=1) == labels))
            grad = self._loss.backward()
            if self._optimizer.loss_scale != 1.0:  # a folded learning rate (see SGD)
                grad *= self._optimizer.loss_scale
            self._net.backward_params(grad)  # no unused input gradient
            if self._decayed:  # the penalty's gradient, scaled like the loss gradient
                add_l2_gradient(self._decayed, mlp.weight_decay, self._optimizer.loss_scale)
            self._optimizer.step()
            if self._decayed and (start // batch) % _FLUSH_EVERY == 0:
                self._optimizer.flush_subnormals()
        return total_loss / divisor, correct / divisor

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
