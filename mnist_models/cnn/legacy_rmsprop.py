"""RMSprop as tf.keras 2 computed it: epsilon added *after* the square root.

Keras 3's ``RMSprop`` divides by ``sqrt(velocity + epsilon)``; tf.keras 2 (TensorFlow 2.x,
without momentum) divided by ``sqrt(velocity) + epsilon``. With the recipe's epsilon of 1e-8
the two differ wherever a weight's gradients are tiny: Keras 3 then damps the step as if
epsilon were 1e-4, tf.keras 2 takes a step of about the learning rate. Runs made with tf.keras 2
(the course report's CNN) need this form to be re-run faithfully.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mnist_models")
class LegacyRMSprop(keras.optimizers.RMSprop):
    """``keras.optimizers.RMSprop`` (no momentum, not centered) with tf.keras 2's epsilon."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.momentum or self.centered:
            raise ValueError("LegacyRMSprop supports neither momentum nor centered")

    def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
        lr = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        velocity = self._velocities[self._get_variable_index(variable)]
        self.assign(
            velocity,
            ops.add(
                ops.multiply(self.rho, velocity), ops.multiply(1 - self.rho, ops.square(gradient))
            ),
        )
        step = ops.divide(ops.multiply(lr, gradient), ops.add(ops.sqrt(velocity), self.epsilon))
        self.assign_sub(variable, step)
