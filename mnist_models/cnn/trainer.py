"""Training the Keras CNN: Keras runs the epochs, a bridge callback reports each one.

Keras's own ``fit`` loop is kept (so the plateau schedule, early stopping and the backend's
compiled train step work as designed); a small callback turns each epoch's logs into the
project's per-epoch event and stops ``fit`` when a subscriber (pruning) asks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from mnist_models.cnn.augment import with_augmentation
from mnist_models.cnn.device import backend_device, backend_requirements
from mnist_models.cnn.model import build_cnn, build_optimizer
from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from mnist_models.trainers import EpochEnd, ModelSink, Trainer, register_trainer

if TYPE_CHECKING:
    from mnist_models.training import TrainResult

_PREDICT_BATCH = 1024


def seed_everything(seed: int) -> None:
    """Seeds Keras, numpy and the backend; on TensorFlow also asks for deterministic ops."""
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()


def release_traced_custom_gradients() -> int:
    """Drops the custom gradients that earlier ``fit`` traces left in TensorFlow's registry.

    Each trace of a train step registers every ``tf.custom_gradient`` it calls under a fresh
    name (``CustomGradient-<uid>``) in a process-wide registry that nothing ever empties; the
    entry holds the whole traced graph, so every model trained in one process kept about
    5 MB (10 MB for our CNN with augmentation), and ``keras.backend.clear_session`` does not
    help (tensorflow#61791). An entry is looked up only while the trace that made it takes its
    gradient, so once the earlier models are done (we are after ``clear_session``) nothing
    reads them again. With this, a 20-trial in-process CNN sweep stays flat (bench/memory.py).

    Returns:
        How many entries were dropped (0 on other backends, or if TensorFlow's internals
        moved, in which case memory grows as before but nothing breaks).
    """
    if keras.backend.backend() != "tensorflow":
        return 0
    from tensorflow.python.framework import ops  # private: checked by tests/mnist_models

    entries = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    if not isinstance(entries, dict):
        return 0
    stale = [name for name in entries if str(name).startswith("CustomGradient-")]
    for name in stale:
        del entries[name]
    return len(stale)


@register_trainer("cnn")
class CNNTrainer(Trainer):
    """Trains :func:`build_cnn`; augmentation is a training-only front layer that the logged
    model does not contain, so validation, test and reloaded models never see it."""

    def __init__(self, config: TrainConfig, splits: Splits) -> None:
        super().__init__(config, splits)
        keras.backend.clear_session()  # trials in one process must not accumulate graphs
        release_traced_custom_gradients()
        seed_everything(config.seed)
        self._net = build_cnn(config)
        self._train_model = self._net
        if config.augmented:
            self._train_model = with_augmentation(self._net, config)
        # One optimizer for both models: its state carries over when augmentation starts later.
        optimizer = build_optimizer(config)
        for model in {id(m): m for m in (self._net, self._train_model)}.values():
            model.compile(
                optimizer=optimizer,
                loss="sparse_categorical_crossentropy",
                metrics=["accuracy"],
            )
        self._x_train = _channels(splits.x_train)
        self._x_val = _channels(splits.x_val)

    @property
    def model(self) -> keras.Model:
        return self._net

    @property
    def learning_rate(self) -> float:
        return float(keras.ops.convert_to_numpy(self._train_model.optimizer.learning_rate))

    def fit(self, epochs: int, end_epoch: EpochEnd) -> None:
        bridge = _Bridge(self, end_epoch)
        cnn, has_val = self.config.cnn, len(self.splits.y_val) > 0
        callbacks = [bridge, *schedule_callbacks(self.config, has_val)]
        plain_epochs = min(epochs, cnn.augment_from_epoch - 1) if self.config.augmented else 0
        phases = [(self._net, 0, plain_epochs), (self._train_model, plain_epochs, epochs)]
        for model, first, last in phases:
            if first >= last:
                continue
            model.fit(
                self._x_train,
                self.splits.y_train,
                batch_size=self.config.batch_size,
                initial_epoch=first,
                epochs=last,
                validation_data=(self._x_val, self.splits.y_val) if has_val else None,
                shuffle=True,
                verbose=0,
                callbacks=callbacks,
            )
            if bridge.stopped:
                break

    def score(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        if len(images) == 0:
            return float("nan"), np.zeros((0, 10), np.float32)
        probs = self._net.predict(_channels(images), batch_size=_PREDICT_BATCH, verbose=0)
        picked = np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1.0)
        return float(-np.log(picked).mean()), probs

    @classmethod
    def runs_on(cls) -> dict[str, str]:
        return {"device": backend_device(), "keras_backend": keras.backend.backend()}

    @classmethod
    def log_model(cls, result: TrainResult, sink: ModelSink) -> None:
        """Keeps the Keras model (without the augmentation front) in Keras's format."""
        sink.log_model(
            "keras",
            result.model,
            result.splits.x_test[:2, ..., None],
            # The test scores are the model's outputs for these images: no predict to trace.
            result.test.scores[:2],
            # Declared, not inferred: inference re-imports the model in a subprocess.
            pip_requirements=backend_requirements(),
        )


def schedule_callbacks(config: TrainConfig, has_val: bool) -> list[keras.callbacks.Callback]:
    """The Keras callbacks of ``config.cnn``'s schedule, both watching validation accuracy.

    ``ReduceLROnPlateau`` multiplies the learning rate by ``plateau_factor`` (not below
    ``min_lr``) after ``plateau_patience`` epochs without improvement; ``EarlyStopping`` ends
    training after ``early_stopping_patience`` such epochs and restores the best weights. A
    patience of 0, or no validation set, leaves that callback out.
    """
    cnn = config.cnn
    callbacks: list[keras.callbacks.Callback] = []
    if cnn.plateau_patience and has_val:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_accuracy",
                patience=cnn.plateau_patience,
                factor=cnn.plateau_factor,
                min_lr=cnn.min_lr,
            )
        )
    if cnn.early_stopping_patience and has_val:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy",
                patience=cnn.early_stopping_patience,
                restore_best_weights=True,
            )
        )
    return callbacks


class _Bridge(keras.callbacks.Callback):
    """Reports each Keras epoch to the training loop; stops ``fit`` when asked."""

    def __init__(self, trainer: CNNTrainer, end_epoch: EpochEnd) -> None:
        super().__init__()
        self.trainer = trainer
        self.end_epoch = end_epoch
        self.epoch_lr = float("nan")
        self.stopped = False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch_lr = self.trainer.learning_rate  # before the plateau schedule changes it

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        logs = logs or {}
        stop = self.end_epoch(
            epoch + 1,
            float(logs.get("loss", float("nan"))),
            float(logs.get("accuracy", float("nan"))),
            float(logs.get("val_loss", float("nan"))),
            float(logs.get("val_accuracy", float("nan"))),
            self.epoch_lr,
        )
        if stop:
            self.stopped = True
            self.model.stop_training = True


def _channels(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32, copy=False)[..., None]
