"""One MLflow run: params, per-epoch metric batches, dataset input, final results, artifacts.

Everything goes through an explicit :class:`mlflow.MlflowClient` and run id, never the fluent
"active run", so nesting is stated (``mlflow.parentRunId``) rather than inferred, and several
runs can be written from one process.

Tracking never costs a result: when the store fails (a server gone, a disk full) after
MLflow's own retries, the run logger warns once with the run's id, stops writing to that run
and lets training finish, so a sweep still records the trial's value in Optuna (the policy is
:mod:`tracking.failures`).

A run logger is also the :class:`~mnist_models.trainers.ModelSink` a trainer hands its model
to (:meth:`RunLogger.log_model`): it logs whatever MLflow flavour the trainer names, so this
module names no model.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import numpy as np
from mlflow import MlflowClient
from mlflow.data.dataset import Dataset
from mlflow.data.numpy_dataset import from_numpy
from mlflow.entities import Dataset as DatasetEntity
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from mnist_models.callbacks import Callback, EpochResult
from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from mnist_models.training import TrainResult
from tracking.failures import (
    TRACKING_ERRORS,
    TrackingUnavailableWarning,
    tracking_failure,
    with_lock_retries,
)
from tracking.figures import confusion_matrix_figure, curves_figure, misclassified_figure

_MAX_PARAM_LENGTH = 6000  # MLflow's limit on a param value
_T = TypeVar("_T")


class RunLogger:
    """Writes one run's content. Created by :class:`tracking.runs.Tracker`.

    Args:
        client: The tracking store's client.
        run_id: The run; ``None`` when it could not be created (then nothing is logged).
        failure: Why this run is not written to any more (set by the first store error).
        epoch_flush_seconds: Epoch metrics wait at most this long to be written; the first
            epoch is written at once, later ones in one ``log_batch`` per interval, and
            whatever is waiting before the result, the model or the end of the run. With
            MLP epochs of half a second, one write per epoch (about 6 ms on SQLite) was 1% of
            a trial.
    """

    def __init__(
        self,
        client: MlflowClient,
        run_id: str | None,
        failure: str | None = None,
        epoch_flush_seconds: float = 2.0,
    ) -> None:
        if not epoch_flush_seconds >= 0:
            raise ValueError(f"{epoch_flush_seconds=} must be >= 0")
        self.client = client
        self.run_id = run_id
        self.failure = failure if run_id is not None else failure or "the run was never created"
        self.epoch_flush_seconds = epoch_flush_seconds
        self._waiting: list[Metric] = []  # epoch metrics not written yet
        self._last_flush = -math.inf

    def _write(self, what: str, call: Callable[[], _T]) -> _T | None:
        """Runs one write to the store; the first failure is warned about, later ones skipped."""
        if self.failure is not None:
            return None
        try:
            return with_lock_retries(call)
        except TRACKING_ERRORS as exc:
            self.failure = tracking_failure(what, exc)
            warnings.warn(
                TrackingUnavailableWarning(
                    f"MLflow run {self.run_id}: {self.failure}; nothing more is logged to this "
                    "run, training goes on"
                ),
                stacklevel=3,
            )
            return None

    # -- inputs --------------------------------------------------------------------------

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Logs params in one batch (lists and bools rendered as TOML-like strings)."""
        batch = [Param(key, _param_text(value)) for key, value in params.items()]
        self._write("log_params", lambda: self.client.log_batch(self.id, params=batch))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        if tags:
            batch = [RunTag(key, str(value)) for key, value in tags.items()]
            self._write("set_tags", lambda: self.client.log_batch(self.id, tags=batch))

    def log_config(self, config: TrainConfig) -> None:
        """The resolved config as params and as ``config.toml`` (the file ``reproduce`` reads)."""
        self.log_params(config.flat())
        self._write(
            "config.toml", lambda: self.client.log_text(self.id, config.to_toml(), "config.toml")
        )

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
                DatasetInput(_dataset_entity(dataset), [InputTag(MLFLOW_DATASET_CONTEXT, context)])
            )
        self._write("log_inputs", lambda: self.client.log_inputs(self.id, datasets=inputs))
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
        """Queues all metrics of one epoch (step = epoch, timestamp = now); writes the queue
        in one ``log_batch`` when ``epoch_flush_seconds`` have passed since the last write."""
        now = int(time.time() * 1000)
        self._waiting += [Metric(k, float(v), now, event.epoch) for k, v in event.metrics().items()]
        if time.monotonic() - self._last_flush >= self.epoch_flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Writes the queued epoch metrics now (MLflow takes up to 1,000 per ``log_batch``)."""
        waiting, self._waiting = self._waiting, []
        self._last_flush = time.monotonic()
        for start in range(0, len(waiting), 1000):
            batch = waiting[start : start + 1000]
            self._write(f"epoch {batch[-1].step}", partial(self._log_metrics, batch))

    def epoch_callback(self) -> Callback:
        """A training callback that logs each epoch to this run."""
        return _EpochLogger(self)

    # -- results -------------------------------------------------------------------------

    def _log_metrics(self, batch: list[Metric]) -> None:
        self.client.log_batch(self.id, metrics=batch)

    def log_result(self, result: TrainResult) -> None:
        """Final test metrics, per-class accuracy, confusion matrix (PNG + JSON), figures."""
        self.flush()
        self._write("results", partial(self._log_result, result))

    def _log_result(self, result: TrainResult) -> None:
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
            self.id, metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()]
        )
        self.client.log_dict(self.id, test.summary(), "confusion_matrix.json")
        self.client.log_figure(self.id, confusion_matrix_figure(test), "confusion_matrix.png")
        if result.history:
            self.client.log_figure(self.id, curves_figure(result.history), "curves.png")
            epochs = [event.metrics() | {"epoch": event.epoch} for event in result.history]
            self.client.log_dict(self.id, {"epochs": epochs}, "history.json")
        if (test.predictions != test.labels).any():
            self.client.log_figure(
                self.id,
                misclassified_figure(result.splits.x_test, test),
                "misclassified.png",
            )

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0) -> None:
        """Logs ``metrics`` at ``step`` in one batch (after whatever epochs are queued)."""
        self.flush()
        now = int(time.time() * 1000)
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        self._write("log_metrics", partial(self._log_metrics, batch))

    def rename(self, name: str) -> None:
        """Changes the run's name (a repeated trial's name gains its mean ± CI at the end)."""
        self._write("rename", lambda: self.client.update_run(self.id, name=name))

    def log_dict(self, data: Mapping[str, Any], path: str) -> None:
        """Logs ``data`` as a JSON (or YAML, by extension) artifact."""
        self._write(path, lambda: self.client.log_dict(self.id, dict(data), path))

    def log_figure(self, figure: Any, path: str) -> None:
        """Logs a matplotlib figure as an image artifact."""
        self._write(path, lambda: self.client.log_figure(self.id, figure, path))

    def log_model(
        self,
        flavor: str,
        model: Any,
        example: np.ndarray,
        outputs: np.ndarray,
        pip_requirements: Sequence[str] = (),
        name: str = "model",
    ) -> None:
        """Logs ``model`` with MLflow's ``flavor`` flavour (MLflow 3 ``name=`` API) on this run.

        Called by a trainer's ``log_model`` hook (see :class:`mnist_models.trainers.ModelSink`).
        The flavours only write through the fluent API, so the run is resumed for the call with
        the tracking URI of this logger, and the caller's fluent state is restored after.

        Args:
            flavor: The MLflow flavour, a module of ``mlflow`` (``"keras"`` for
                ``mlflow.keras``).
            model: The model.
            example: A few inputs, for the signature.
            outputs: The model's outputs for ``example`` (given, not predicted here: a predict
                call traces a new function, a tenth of a second or more per trial).
            pip_requirements: Declared, not inferred: inference re-imports the model in a
                subprocess.
            name: The artifact path of the model.
        """
        write = partial(
            self._log_model, flavor, model, example, outputs, list(pip_requirements), name
        )
        self.flush()
        self._write(f"{flavor} model", write)

    def _log_model(
        self,
        flavor: str,
        model: Any,
        example: np.ndarray,
        outputs: np.ndarray,
        pip_requirements: list[str],
        name: str,
    ) -> None:
        import mlflow
        from mlflow.models import infer_signature

        flavour = importlib.import_module(f"mlflow.{flavor}")
        with fluent_tracking_uri(self.client.tracking_uri), mlflow.start_run(run_id=self.id):
            flavour.log_model(
                model,
                name=name,
                signature=infer_signature(example, outputs),
                pip_requirements=pip_requirements,
            )
        self.client.update_run(self.id, status="RUNNING")  # the caller ends the run

    def end(self, status: str = "FINISHED") -> None:
        """Writes what is queued, then closes the run with an MLflow status (FINISHED, FAILED
        or KILLED)."""
        self.flush()
        self._write("end", lambda: self.client.set_terminated(self.id, status=status))

    @property
    def id(self) -> str:
        """The run's id, for a run that exists (``run_id`` may be ``None``)."""
        if self.run_id is None:
            raise RuntimeError(f"no MLflow run: {self.failure}")
        return self.run_id


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


def _dataset_entity(dataset: Dataset) -> DatasetEntity:
    """The run-input record of ``dataset``, from its public ``to_dict()`` (the same fields
    MLflow's own ``log_input`` sends: name, digest, source type, source, schema, profile)."""
    fields = dataset.to_dict()
    return DatasetEntity(
        name=fields["name"],
        digest=fields["digest"],
        source_type=fields["source_type"],
        source=fields["source"],
        schema=fields.get("schema"),
        profile=fields.get("profile"),
    )


@contextlib.contextmanager
def fluent_tracking_uri(uri: str) -> Iterator[None]:
    """Points MLflow's fluent API at ``uri`` for the block, then leaves it exactly as before.

    ``mlflow.set_tracking_uri`` also exports ``MLFLOW_TRACKING_URI`` to the environment (for
    subprocesses), and ``mlflow.get_tracking_uri()`` returns the default as an absolute path:
    restoring with ``set_tracking_uri(get_tracking_uri())`` would leave every process this
    one starts afterwards (trial processes, workers) logging into this one's working folder.
    """
    import mlflow
    from mlflow.environment_variables import MLFLOW_TRACKING_URI

    before = MLFLOW_TRACKING_URI.get()  # None: nobody chose one, MLflow's default applies
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(before)  # None unsets the variable again
