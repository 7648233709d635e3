"""A CNN trial is swept and tracked exactly like an MLP trial, plus its Keras model."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import optuna
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from mnist_models.config import DataConfig, TrainConfig
from mnist_models.data import MnistData, Splits, make_splits
from mnist_models.training import load_splits
from sweeps.engine.session import SweepSettings
from sweeps.engine.sweep import run_sweep
from sweeps.spec.sweep_file import SweepConfig
from tracking.run_logger import fluent_tracking_uri

keras = pytest.importorskip("keras")


def test_cnn_trial_logs_curves_figures_and_a_reloadable_model(
    tmp_path: Path, mnist: MnistData
) -> None:
    splits = make_splits(mnist, DataConfig(train_size=400, val_fraction=0.25, test_size=200), 0)
    sweep = SweepConfig.for_model("cnn").with_overrides(
        {"epochs": 2, "data.train_size": 400, "data.val_fraction": 0.25, "data.test_size": 200},
        trials=1,
    )
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = SweepSettings(
        study="cnn", storage=f"sqlite:///{tmp_path / 'optuna.db'}", tracking_uri=store, trials=1
    )
    study = run_sweep(sweep, settings, splits_for=lambda config: splits)
    (trial,) = study.trials
    assert trial.state.name == "COMPLETE"

    client = MlflowClient(store)
    run = client.get_run(trial.user_attrs["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.data.params["model"] == "cnn"
    assert run.data.tags["keras_backend"] == keras.backend.backend()
    assert run.data.tags["device"] == "cpu" or run.data.tags["device"].startswith("gpu ")
    assert [m.step for m in client.get_metric_history(run.info.run_id, "learning_rate")] == [1, 2]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"confusion_matrix.png", "curves.png", "config.toml"} <= names
    _assert_the_logged_model_scores_as_logged(store, run, splits)


@pytest.mark.backend
@pytest.mark.slow  # a minute on two cores: the slow pass runs it on TensorFlow, the JAX pass too
def test_a_cnn_trial_in_a_fresh_process_is_pruned_over_the_pipe(
    tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--trial-process` is how a GPU's memory is handed back after each trial: the child
    # trains on the backend the sweep was started with, and pruning still reaches it.
    sweep = SweepConfig.for_model("cnn").with_overrides(
        {
            "epochs": 2,
            "augment": True,
            "data.train_size": 200,
            "data.val_fraction": 0.25,
            "data.test_size": 200,
        },
        trials=1,
    )
    # Prunes at the first reported epoch: the report went to the parent, the answer came back.
    monkeypatch.setattr(
        "sweeps.engine.session.make_pruner", lambda name: optuna.pruners.ThresholdPruner(1.01)
    )
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    settings = SweepSettings(
        study="cnn-child",
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
        tracking_uri=store,
        trials=1,
        data_dir=mnist_dir,
        trial_process=True,
    )
    (trial,) = run_sweep(sweep, settings).trials
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [1]
    run = MlflowClient(store).get_run(trial.user_attrs["mlflow_run_id"])
    assert run.info.status == "KILLED" and run.data.tags["pruned_at_epoch"] == "1"
    assert run.data.params["augment"] == "true"
    assert run.data.tags["keras_backend"] == keras.backend.backend()
    # The model the child logged reloads here and scores the unwarped test images as logged.
    config = TrainConfig.from_dict(trial.user_attrs["config"])
    _assert_the_logged_model_scores_as_logged(store, run, load_splits(config, mnist_dir))


def _assert_the_logged_model_scores_as_logged(store: str, run: Run, splits: Splits) -> None:
    (output,) = run.outputs.model_outputs
    with fluent_tracking_uri(store):  # models:/ URIs resolve against the fluent tracking URI
        model = mlflow.keras.load_model(f"models:/{output.model_id}")
        signature = mlflow.models.get_model_info(f"models:/{output.model_id}").signature
    probs = model.predict(splits.x_test[..., None], batch_size=1024, verbose=0)
    # The signature describes what the model takes and gives: (n, 28, 28, 1) in, (n, 10) out.
    (inputs,), (outputs,) = signature.inputs.inputs, signature.outputs.inputs
    assert inputs.shape == (-1, 28, 28, 1) and outputs.shape == (-1, 10)
    assert outputs.type == probs.dtype
    assert np.mean(probs.argmax(axis=1) == splits.y_test) == pytest.approx(
        run.data.metrics["test_accuracy"]
    )
