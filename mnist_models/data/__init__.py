"""MNIST: finding, verifying, downloading and splitting it."""

from mnist_models.data.idx import parse_idx, read_idx
from mnist_models.data.sources import (
    MNIST_FILES,
    DatasetFallbackWarning,
    DatasetInfo,
    MnistData,
    cache_dir,
    download_mnist,
    load_from_folder,
    load_keras_npz,
    load_mnist,
    load_sample,
)
from mnist_models.data.splits import Splits, make_splits

__all__ = [
    "MNIST_FILES",
    "DatasetFallbackWarning",
    "DatasetInfo",
    "MnistData",
    "Splits",
    "cache_dir",
    "download_mnist",
    "load_from_folder",
    "load_keras_npz",
    "load_mnist",
    "load_sample",
    "make_splits",
    "parse_idx",
    "read_idx",
]
