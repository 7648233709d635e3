"""The pure core: MNIST data, the numpy MLP, training loops and metrics.

Never imports mlflow, optuna, ``tracking`` or ``sweeps`` (``tests/test_layers.py`` proves it).
"""

from mnist_models.callbacks import Callback, CallbackList, EpochResult, StopTraining
from mnist_models.config import AugmentationConfig, DataConfig, MLPConfig, TrainConfig
from mnist_models.errors import (
    ConfigError,
    DataError,
    MnistSweepsError,
    TrainingDiverged,
    TrialFailed,
)
from mnist_models.metrics import Evaluation
from mnist_models.trainers import Trainer, register_trainer
from mnist_models.training import TrainResult, load_splits, train

__all__ = [
    "AugmentationConfig",
    "Callback",
    "CallbackList",
    "ConfigError",
    "DataConfig",
    "DataError",
    "EpochResult",
    "Evaluation",
    "MLPConfig",
    "MnistSweepsError",
    "StopTraining",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "TrialFailed",
    "load_splits",
    "register_trainer",
    "train",
]
