"""The trainer interface and registry: a model is one entry, ``name -> Trainer`` class.

A model joins by registering its trainer when its module is imported, as Optuna's samplers and
KerasTuner's tuners are looked up by name rather than by an ``if`` in the base::

    @register_trainer("mlp")
    class MLPTrainer(Trainer): ...

:func:`mnist_models.training.train` then builds ``make_trainer(config, splits)`` for
``config.model``; neither it nor this module imports any trainer, so trainer modules import
this base module without an import cycle.

Why one table, :data:`PACKAGED`: a trainer registers itself only once its module has been
imported, and the CNN's module imports Keras and TensorFlow (seconds and gigabytes). Importing
every trainer up front, as a plug-in scan would, would make ``import mnist_models``, training
an MLP and the CLI's ``--help`` pay for TensorFlow. So the registry knows, for each model
packaged here, only the dotted *name* of the module that registers it (a string, not an
import) and imports it the first time that model is asked for. Adding a packaged model is one
line there plus its trainer module; a model from outside the package registers itself by being
imported (or by calling :func:`register_trainer`) before it is trained. Package entry points
would do the same for installed plug-ins, at the cost of reinstalling the package whenever a
model is added; one table was chosen as the smaller thing.

Trainers never see a tracking library: a trained model is handed to a :class:`ModelSink`
(:class:`tracking.run_logger.RunLogger` is one) through the :meth:`Trainer.log_model` hook.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from mnist_models.config import TrainConfig
from mnist_models.data import Splits

if TYPE_CHECKING:
    from mnist_models.training import TrainResult

__all__ = [
    "PACKAGED",
    "EpochEnd",
    "ModelSink",
    "Trainer",
    "make_trainer",
    "register_trainer",
    "trainer_class",
]

# end_epoch(epoch, train_loss, train_accuracy, val_loss, val_accuracy, learning_rate) -> stop?
EpochEnd = Callable[[int, float, float, float, float, float], bool]

PACKAGED: dict[str, str] = {
    "mlp": "mnist_models.mlp.trainer",
    "cnn": "mnist_models.cnn.trainer",  # imports Keras: only when a config asks for a CNN
}
"""The packaged models: name -> the module that registers its trainer when imported."""


class ModelSink(Protocol):
    """Where a trainer hands its trained model to be kept (a tracking run, for one).

    The sink does the saving in the named format, so training code needs no tracking library.
    """

    def log_model(
        self,
        flavor: str,
        model: Any,
        example: np.ndarray,
        outputs: np.ndarray,
        pip_requirements: Sequence[str] = (),
    ) -> None:
        """Keeps ``model`` under the artifact path ``model``.

        Args:
            flavor: The format, named after the model's framework as MLflow names its
                flavours (``"keras"``).
            model: The trained model object.
            example: A few inputs, for the model's signature.
            outputs: The model's outputs for ``example``.
            pip_requirements: What loading the model needs installed (``keras==3.x``).
        """


class Trainer(abc.ABC):
    """One model's training steps; built from a frozen config, never from a sweep trial.

    Subclasses define :meth:`score` and :attr:`model`, and either :meth:`train_epoch` (the
    default :meth:`fit` loops over it) or their own :meth:`fit`; they may override
    :meth:`log_model` to keep the trained model with a tracked run. Register one with
    :func:`register_trainer` to make it trainable by name.
    """

    def __init__(self, config: TrainConfig, splits: Splits) -> None:
        self.config = config
        self.splits = splits

    def train_epoch(self) -> tuple[float, float]:
        """Runs one pass over the training set; returns (mean loss, accuracy) seen in it.

        Used by the default :meth:`fit`; a trainer that overrides ``fit`` need not define it.
        """
        raise NotImplementedError(f"{type(self).__name__} trains through its own fit()")

    @abc.abstractmethod
    def score(self, images: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
        """Returns (mean loss, per-class scores of shape (n, 10)) in inference mode."""

    @property
    @abc.abstractmethod
    def model(self) -> Any:
        """The trained model object."""

    @property
    def learning_rate(self) -> float:
        """The learning rate the coming epoch trains at (:meth:`fit` reports it per epoch)."""
        return self.config.lr

    def end_of_epoch(self, val_accuracy: float) -> None:
        """Called by the default :meth:`fit` after each epoch's validation, before the epoch
        is reported; a learning-rate schedule that follows validation accuracy listens here.

        Args:
            val_accuracy: The epoch's validation accuracy (NaN without a validation set).
        """
        return

    def validate(self) -> tuple[float, float]:
        """(loss, accuracy) on the validation split; NaN when there is none."""
        splits = self.splits
        if len(splits.y_val) == 0:
            return float("nan"), float("nan")
        loss, scores = self.score(splits.x_val, splits.y_val)
        return loss, float(np.mean(scores.argmax(axis=1) == splits.y_val))

    def fit(self, epochs: int, end_epoch: EpochEnd) -> None:
        """Trains up to ``epochs``, calling ``end_epoch`` after each; stops when it says so.

        Override this (not the loop in :func:`mnist_models.training.train`) when a framework
        runs its own epoch loop, as Keras's ``fit`` does.
        """
        for epoch in range(1, epochs + 1):
            learning_rate = self.learning_rate
            # Overflow is reported as divergence by ``end_epoch``, not as numpy warnings.
            with np.errstate(over="ignore", invalid="ignore"):
                train_loss, train_accuracy = self.train_epoch()
            val_loss, val_accuracy = self.validate()
            self.end_of_epoch(val_accuracy)
            if end_epoch(epoch, train_loss, train_accuracy, val_loss, val_accuracy, learning_rate):
                return

    @classmethod
    def runs_on(cls) -> dict[str, str]:
        """Where this model trains in this process, as run tags: ``{"device": "cpu"}`` for
        numpy; a framework adds its backend and accelerator (``"gpu NVIDIA H200"``)."""
        return {"device": "cpu"}

    @classmethod
    def log_model(cls, result: TrainResult, sink: ModelSink) -> None:
        """Hands ``result.model`` to ``sink`` to be kept with the run; by default nothing is
        kept (a model that is quick to retrain from its config and seed need not be).

        A class method, so a result can be logged without keeping its trainer (and the
        trainer's copies of the data) alive: :meth:`TrainResult.log_model` calls it.
        """
        return  # nothing to keep


_T = TypeVar("_T", bound=type[Trainer])
_REGISTRY: dict[str, type[Trainer]] = {}


def register_trainer(name: str) -> Callable[[_T], _T]:
    """A class decorator that makes ``config.model == name`` train with the decorated trainer.

    Raises:
        ValueError: When ``name`` already has a different trainer.
    """

    def register(trainer: _T) -> _T:
        known = _REGISTRY.get(name)
        if known is not None and _path(known) != _path(trainer):
            raise ValueError(f"model {name!r} already has a trainer: {_path(known)}")
        _REGISTRY[name] = trainer  # the same class again: a reloaded module
        return trainer

    return register


def _path(trainer: type[Trainer]) -> str:
    return f"{trainer.__module__}.{trainer.__qualname__}"


def trainer_class(name: str) -> type[Trainer]:
    """The trainer registered for model ``name``, importing its packaged module if need be.

    Raises:
        ValueError: When no trainer is registered for ``name`` (config validation prevents
            this for the models a config accepts).
    """
    if name not in _REGISTRY and name in PACKAGED:
        importlib.import_module(PACKAGED[name])  # registers it
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"no trainer for model {name!r}") from None


def make_trainer(config: TrainConfig, splits: Splits) -> Trainer:
    """Builds the :class:`Trainer` registered for ``config.model``."""
    return trainer_class(config.model)(config, splits)
