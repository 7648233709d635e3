"""One fused random affine warp per image (rotation, zoom, shift) as a Keras layer.

Instead of chaining ``RandomRotation``, ``RandomZoom`` and ``RandomTranslation`` (three
resamplings, far slower), each image's inverse transform is built as one row of the
``[a0, a1, a2, b0, b1, b2, c0, c1]`` form and the batch is resampled by a single
``keras.ops.image.affine_transform`` call. Active only in training.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import keras
from keras import ops

if TYPE_CHECKING:
    from mnist_models.config import TrainConfig


@keras.saving.register_keras_serializable(package="mnist_models")
class RandomAffine(keras.layers.Layer):
    """Random rotation (±``rotation`` degrees), zoom (1 ± ``zoom``) and shift (± ``shift`` of
    the side), drawn per image from a seeded generator, applied about the image centre.

    Args:
        rotation: Maximum rotation in degrees.
        zoom: Maximum relative zoom.
        shift: Maximum shift as a fraction of the image side, per axis.
        seed: Seeds the layer's own generator.
    """

    def __init__(
        self, rotation: float, zoom: float, shift: float, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not 0 <= rotation <= 180:
            raise ValueError(f"{rotation=} must be in [0, 180] degrees")
        if not 0 <= zoom < 1:
            raise ValueError(f"{zoom=} must be in [0, 1)")
        if not 0 <= shift < 1:
            raise ValueError(f"{shift=} must be in [0, 1)")
        self.rotation, self.zoom, self.shift, self.seed = rotation, zoom, shift, seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def transforms(self, batch: Any, height: int, width: int) -> Any:
        """The (batch, 8) inverse transforms: output pixel (x, y) reads the input there."""
        angle = keras.random.uniform((batch,), -1.0, 1.0, seed=self.seed_generator) * (
            self.rotation * math.pi / 180.0
        )
        scale = keras.random.uniform(
            (batch,), 1.0 - self.zoom, 1.0 + self.zoom, seed=self.seed_generator
        )
        shift_x = keras.random.uniform((batch,), -1.0, 1.0, seed=self.seed_generator)
        shift_y = keras.random.uniform((batch,), -1.0, 1.0, seed=self.seed_generator)
        shift_x, shift_y = shift_x * (self.shift * width), shift_y * (self.shift * height)
        cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
        cos, sin = ops.cos(angle) / scale, ops.sin(angle) / scale
        # Inverse of: rotate by angle and scale about the centre, then shift.
        ox, oy = cx + shift_x, cy + shift_y
        a2 = cx - cos * ox - sin * oy
        b2 = cy + sin * ox - cos * oy
        zeros = ops.zeros_like(cos)
        return ops.stack([cos, sin, a2, -sin, cos, b2, zeros, zeros], axis=1)

    def call(self, images: Any, training: bool | None = None) -> Any:
        if not training:
            return images
        shape = ops.shape(images)
        transform = self.transforms(shape[0], images.shape[1], images.shape[2])
        return ops.image.affine_transform(
            images,
            transform,
            interpolation="bilinear",
            fill_mode="constant",
            data_format="channels_last",
        )

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "rotation": self.rotation,
            "zoom": self.zoom,
            "shift": self.shift,
            "seed": self.seed,
        }


def with_augmentation(net: keras.Model, config: TrainConfig) -> keras.Model:
    """``net`` behind a :class:`RandomAffine` front layer with ``config.augmentation``'s ranges,
    seeded by ``config.seed``: the model training runs on; ``net`` alone is the one kept."""
    aug = config.augmentation
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            RandomAffine(aug.rotation, aug.zoom, aug.shift, seed=config.seed),
            net,
        ],
        name="augmented_mnist_cnn",
    )
