"""One MLflow run: params, per-epoch metric batches, dataset input, final results, artifacts.

Everything goes through an explicit :class:`mlflow.MlflowClient` and run id, never the fluent
"active run", so nesting is stated (``mlflow.parentRunId``) rather than inferred, and several
runs can be written from one process.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np
from mlflow import MlflowClient
from mlflow.data.numpy_dataset import from_numpy
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from mnist_models.callbacks import Callback, EpochResult
from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from mnist_models.training import TrainResult, train
from tracking.figures import confusion_matrix_figure, curves_figure, misclassified_figure

_MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value


class RunLogger:
    """Writes one run's content. Created by :class:`tracking.runs.Tracker`."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    # -- inputs --------------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Logs params in one batch (lists and bools rendered as TOML-like strings)."""
        self.client.log_batch(
            self.run_id,
            params=[Param(key, _param_text(value)) for key, value in params.items()],
        )

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if tags:
            self.client.log_batch(
                self.run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()]
            )

    def log_config(self, config: TrainConfig) -> None:
        """The resolved config as params and as ``config.toml`` (the file ``reproduce`` reads)."""
        self.log_params(config.flat())
        self.client.log_text(self.run_id, config.to_toml(), "config.toml")

    def log_dataset(self, splits: Splits) -> None:
        """Records which images were used (name, source, digest, sizes) as run inputs."""
        info = splits.info
        inputs = []
        for context, images, labels in (
            ("train", splits.x_train, splits.y_train),
            ("validation", splits.x_val, splits.y_val),
            ("test", splits.x_test, splits.y_test),
        ):
            with warnings.catch_warnings():
                # A local path matches MLflow's local source type twice; either reading is right.
                warnings.filterwarnings("ignore", "The specified dataset source")
                describe = partial(
                    from_numpy,
                    images,
                    targets=labels,
                    name=f"{info.name}-{context}",
                    digest=splits.digest,
                )
                try:
                    dataset = describe(source=info.source)
                except MlflowException:  # a source MLflow cannot classify: keep it as a tag
                    dataset = describe()
            inputs.append(
                DatasetInput(
                    dataset._to_mlflow_entity(),
                    tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)],
                )
            )
        self.client.log_inputs(self.run_id, datasets=inputs)
        self.set_tags(
            {
                "dataset.name": info.name,
                "dataset.source": info.source,
                "dataset.digest": splits.digest,
                "dataset.sizes": f"{len(splits.y_train)}/{len(splits.y_val)}/{len(splits.y_test)}",
            }
        )

    # -- progress ------------------------------------------------------------------------

    def log_epoch(self, event: EpochResult) -> None:
        """All metrics of one epoch in a single ``log_batch`` call (step = epoch)."""
        now = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id,
            metrics=[
                Metric(key, float(value), now, event.epoch)
                for key, value in event.metrics().items()
            ],
        )

    def epoch_callback(self) -> Callback:
        """A training callback that logs each epoch to this run."""
        return _EpochLogger(self)

    # -- results -------------------------------------------------------------------------

    def log_result(self, result: TrainResult) -> None:
        """Final test metrics, per-class accuracy, confusion matrix (PNG + JSON), figures."""
        test = result.test
        metrics = {
            "test_accuracy": test.accuracy,
            "test_loss": test.loss,
            "epochs_trained": result.epochs_trained,
            "train_seconds": result.seconds,
        }
        for digit, value in enumerate(test.per_class_accuracy):
            metrics[f"test_accuracy_digit_{digit}"] = float(value)
        now = int(time.time() * 1000)
        self.client.log_batch(
            self.run_id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()]
        )
        self.client.log_dict(self.run_id, test.summary(), "confusion_matrix.json")
        self.client.log_figure(self.run_id, confusion_matrix_figure(test), "confusion_matrix.png")
        if result.history:
            self.client.log_figure(self.run_id, curves_figure(result.history), "curves.png")
            epochs = [event.metrics() | {"epoch": event.epoch} for event in result.history]
            self.client.log_dict(self.run_id, {"epochs": epochs}, "history.json")
        if (test.predictions != test.labels).any():
            self.client.log_figure(
                self.run_id,
                misclassified_figure(result.splits.x_test, test),
                "misclassified.png",
            )

    def log_keras_model(self, model: Any, example: np.ndarray, name: str = "model") -> None:
        """Logs a Keras model with MLflow's Keras flavour (MLflow 3 ``name=`` API) on this run.

        The flavour only writes through the fluent API, so the run is resumed for the call with
        the tracking URI of this logger, and the caller's fluent state is restored after.
        """
        import keras
        import mlflow
        import mlflow.keras
        from mlflow.models import infer_signature

        previous = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(self.client.tracking_uri)
        try:
            with mlflow.start_run(run_id=self.run_id):
                signature = infer_signature(example, model.predict(example, verbose=0))
                mlflow.keras.log_model(
                    model,
                    name=name,
                    signature=signature,
                    # Declared, not inferred: inference re-imports the model in a subprocess.
                    pip_requirements=[f"keras=={keras.__version__}"],
                )
            self.client.update_run(self.run_id, status="RUNNING")  # the caller ends the run
        finally:
            mlflow.set_tracking_uri(previous)

    def end(self, status: str = "FINISHED") -> None:
        """Closes the run with an MLflow status (FINISHED, FAILED or KILLED)."""
        self.client.set_terminated(self.run_id, status=status)


class _EpochLogger(Callback):
    def __init__(self, run: RunLogger) -> None:
        self.run = run

    def on_epoch_end(self, result: EpochResult) -> None:
        self.run.log_epoch(result)


def _param_text(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple, dict)):
        text = json.dumps(value)
    else:
        text = str(value)
    return text[:_MAX_PARAM_LENGTH]


def train_logged(
    run: RunLogger,
    config: TrainConfig,
    splits: Splits,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Trains ``config`` while logging config, dataset, every epoch and the result to ``run``.

    The run is left open: the caller decides its final status (finished, pruned, failed).
    """
    run.log_config(config)
    run.log_dataset(splits)
    result = train(config, splits, [run.epoch_callback(), *callbacks])
    run.log_result(result)
    if config.model == "cnn":
        run.log_keras_model(result.model, splits.x_test[:2, ..., None])
    return result


def train_and_end(
    run: RunLogger,
    config: TrainConfig,
    splits: Splits,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """:func:`train_logged`, then ends ``run``: FINISHED, KILLED on Ctrl-C, FAILED otherwise.

    For single runs (``train``, ``reproduce``); sweep trials end their runs themselves, since
    a pruned trial is neither finished nor failed.
    """
    status = "FAILED"
    try:
        result = train_logged(run, config, splits, callbacks)
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        run.end(status)
    return result
