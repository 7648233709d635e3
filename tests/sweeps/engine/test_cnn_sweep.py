"""A CNN trial is swept and tracked exactly like an MLP trial, plus its Keras model."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from mnist_models.config import DataConfig
from mnist_models.data import MnistData, make_splits
from sweeps.engine.session import SweepSettings
from sweeps.engine.sweep import run_sweep
from sweeps.spec.sweep_file import SweepConfig
from tracking.run_logger import fluent_tracking_uri

pytest.importorskip("keras")


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
    assert [m.step for m in client.get_metric_history(run.info.run_id, "learning_rate")] == [1, 2]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"confusion_matrix.png", "curves.png", "config.toml"} <= names
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
