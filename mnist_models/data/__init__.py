"""MNIST: finding, verifying, downloading and splitting it.

Never imports the tracking or sweep layers (nor MLflow or Optuna): the data layer stands alone.
"""

from mnist_models.data.idx import parse_idx, read_idx
from mnist_models.data.sources import (
    DEFAULT_MIRRORS,
    MNIST_FILES,
    DatasetFallbackWarning,
    DatasetInfo,
    MnistData,
    MnistFile,
    cache_dir,
    download_mnist,
    keras_npz_path,
    load_from_folder,
    load_keras_npz,
    load_mnist,
    load_sample,
    mirrors_from_env,
)
from mnist_models.data.splits import Splits, make_splits

__all__ = [
    "DEFAULT_MIRRORS",
    "MNIST_FILES",
    "DatasetFallbackWarning",
    "DatasetInfo",
    "MnistData",
    "MnistFile",
    "Splits",
    "cache_dir",
    "download_mnist",
    "keras_npz_path",
    "load_from_folder",
    "load_keras_npz",
    "load_mnist",
    "load_sample",
    "make_splits",
    "mirrors_from_env",
    "parse_idx",
    "read_idx",
]
