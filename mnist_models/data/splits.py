"""Train / validation / test splits of loaded MNIST, scaled to [0, 1] in the chosen dtype."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np

from mnist_models import fields
from mnist_models.choices import DTYPES, Dtype
from mnist_models.config import DataConfig
from mnist_models.data.sources import DatasetInfo, MnistData
from mnist_models.errors import DataError


@dataclass(frozen=True)
class Splits:
    """Images (n, 28, 28) in [0, 1] and int64 labels for each split.

    Attributes:
        x_train: Training images, float in [0, 1].
        y_train: Training labels, int64.
        x_val: Validation images (shape (0, 28, 28) when ``val_fraction`` is 0).
        y_val: Validation labels.
        x_test: The first ``test_size`` test images.
        y_test: Their labels.
        info: The source dataset, with ``n_train`` (train plus validation) and ``n_test`` of
            this slice.
        digest: sha256 (16 hex) of the raw uint8 images and labels in every split, so it
            changes with ``train_size``, ``test_size`` and the validation draw.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: DatasetInfo
    digest: str


def make_splits(data: MnistData, config: DataConfig, seed: int, dtype: Dtype = "float32") -> Splits:
    """Slices and splits ``data`` as ``config`` says.

    Takes the first ``train_size`` training images (in their original order, so a small
    slice is the same images whatever the seed), holds out ``round(val_fraction * n)`` of
    them at random with ``np.random.default_rng(seed)`` (or as ``config.val_split`` and
    ``config.split_seed`` say), and takes the first ``test_size``
    test images. Every split keeps the original order of its images. Images are scaled to
    [0, 1]; with ``config.double_scale_train`` the training and validation images are
    divided by 255 once more.

    Args:
        data: Loaded MNIST (or the sample).
        config: ``train_size``, ``val_fraction`` and ``test_size``.
        seed: Seeds the validation draw.
        dtype: ``"float32"`` or ``"float64"`` for the images (scaled by 1/255 in that dtype).

    Returns:
        The splits.

    Raises:
        ConfigError: ``dtype`` is not float32 or float64.
        DataError: ``train_size`` or ``test_size`` exceed what ``data`` holds.
    """
    fields.as_choice("dtype", dtype, DTYPES)
    n_available, n_test_available = len(data.y_train), len(data.y_test)
    n = n_available if config.train_size is None else config.train_size
    n_test = n_test_available if config.test_size is None else config.test_size
    if n > n_available:
        raise DataError(
            f"data.train_size={n}: {data.info.name} has only {n_available} training images"
        )
    if n_test > n_test_available:
        raise DataError(
            f"data.test_size={n_test}: {data.info.name} has only {n_test_available} test images"
        )
    val_index, train_index = _validation_draw(n, config, seed)
    images, labels = data.x_train[:n], data.y_train[:n]
    raw = {
        "train": (images[train_index], labels[train_index]),
        "val": (images[val_index], labels[val_index]),
        "test": (data.x_test[:n_test], data.y_test[:n_test]),
    }
    digest = hashlib.sha256()
    for name, (x, y) in raw.items():
        # The sizes go in too, so moving images between splits always changes the digest.
        digest.update(f"{name}:{len(y)};".encode())
        digest.update(np.ascontiguousarray(x).tobytes())
        digest.update(np.ascontiguousarray(y).tobytes())
    scale = np.dtype(dtype).type(255)

    def prepare(x: np.ndarray, y: np.ndarray, twice: bool) -> tuple[np.ndarray, np.ndarray]:
        # Divide in the target dtype: float32 runs never touch float64.
        images = x.astype(dtype) / scale
        if twice:  # faithful mode: a second division, not one by 255**2 (rounds differently)
            images /= scale
        return images, y.astype(np.int64)

    twice = config.double_scale_train
    x_train, y_train = prepare(*raw["train"], twice)
    x_val, y_val = prepare(*raw["val"], twice)
    x_test, y_test = prepare(*raw["test"], False)
    return Splits(
        x_train,
        y_train,
        x_val,
        y_val,
        x_test,
        y_test,
        info=replace(data.info, n_train=n, n_test=n_test),
        digest=digest.hexdigest()[:16],
    )


def _validation_draw(n: int, config: DataConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted indices of the validation and training images among the first ``n``."""
    split_seed = seed if config.split_seed is None else config.split_seed
    if config.val_split == "sklearn" and config.val_fraction > 0:
        from sklearn.model_selection import train_test_split

        train, val = train_test_split(
            np.arange(n), test_size=config.val_fraction, random_state=split_seed
        )
        return np.sort(val), np.sort(train)
    order = np.random.default_rng(split_seed).permutation(n)
    n_val = round(config.val_fraction * n)
    return np.sort(order[:n_val]), np.sort(order[n_val:])
