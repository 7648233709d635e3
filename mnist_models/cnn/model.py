"""The Kaggle MNIST CNN ("Introduction to CNN Keras") from a frozen config, in Keras 3 only."""

from __future__ import annotations

import keras
from keras import layers

from mnist_models.cnn.legacy_rmsprop import LegacyRMSprop
from mnist_models.config import TrainConfig


def build_cnn(config: TrainConfig) -> keras.Model:
    """``[[Conv(32,5x5)]x2 → MaxPool → Dropout] → [[Conv(64,3x3)]x2 → MaxPool/2 → Dropout]
    → Flatten → Dense(256) → Dropout → Dense(10, softmax)``, sizes and rates from the config."""
    cnn = config.cnn
    rate1, rate2, rate3 = cnn.effective_dropout_rates(config.dropout)
    small, large = cnn.filters
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(small, 5, padding="same", activation="relu"),
            layers.Conv2D(small, 5, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Dropout(rate1),
            layers.Conv2D(large, 3, padding="same", activation="relu"),
            layers.Conv2D(large, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2, strides=2),
            layers.Dropout(rate2),
            layers.Flatten(),
            layers.Dense(cnn.dense_units, activation="relu"),
            layers.Dropout(rate3),
            layers.Dense(10, activation="softmax"),
        ],
        name="mnist_cnn",
    )


def build_optimizer(config: TrainConfig) -> keras.optimizers.Optimizer:
    """RMSprop(lr, rho, epsilon) as in the recipe (``cnn.rmsprop_epsilon`` says where epsilon
    goes), or Adam(lr, epsilon)."""
    cnn = config.cnn
    if cnn.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=config.lr, epsilon=cnn.epsilon)
    if cnn.rmsprop_epsilon == "outside_sqrt":
        return LegacyRMSprop(learning_rate=config.lr, rho=cnn.rho, epsilon=cnn.epsilon)
    return keras.optimizers.RMSprop(learning_rate=config.lr, rho=cnn.rho, epsilon=cnn.epsilon)
