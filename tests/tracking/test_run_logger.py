"""What one tracked run holds in a real (SQLite) MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from mnist_models.callbacks import EpochResult
from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from tracking import Tracker, train_logged
from tracking.run_logger import RunLogger, fluent_tracking_uri


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def test_a_logged_run_holds_config_curves_dataset_and_figures(
    store: str, tmp_path: Path, small_splits: Splits, tiny_config: TrainConfig
) -> None:
    tracker = Tracker("unit", store)
    run = tracker.start_run("one", tags={"kind": "test"})
    result = train_logged(run, tiny_config.replace({"epochs": 3}), small_splits)
    run.end()

    client = MlflowClient(store)
    data = client.get_run(run.run_id)
    assert data.info.status == "FINISHED"
    assert data.data.params["lr"] == str(tiny_config.lr)
    assert json.loads(data.data.params["mlp.hidden_sizes"]) == list(tiny_config.mlp.hidden_sizes)
    assert data.data.metrics["test_accuracy"] == pytest.approx(result.test.accuracy)
    labels, predicted = result.test.labels, result.test.predictions
    for digit in range(10):  # each digit's own recall, under its own name
        recall = np.mean(predicted[labels == digit] == digit)
        assert data.data.metrics[f"test_accuracy_digit_{digit}"] == pytest.approx(recall)
    history = client.get_metric_history(run.run_id, "val_accuracy")
    assert [m.step for m in history] == [1, 2, 3]
    assert [m.value for m in history] == pytest.approx([e.val_accuracy for e in result.history])
    names = {a.path for a in client.list_artifacts(run.run_id)}
    assert {"config.toml", "confusion_matrix.png", "confusion_matrix.json", "curves.png"} <= names
    config_file = Path(client.download_artifacts(run.run_id, "config.toml", str(tmp_path)))
    assert TrainConfig.from_toml(config_file) == tiny_config.replace({"epochs": 3})
    matrix = json.loads(
        Path(
            client.download_artifacts(run.run_id, "confusion_matrix.json", str(tmp_path))
        ).read_text()
    )
    assert matrix["confusion_matrix"] == result.test.confusion.tolist()
    contexts = {
        tag.value
        for inp in data.inputs.dataset_inputs
        for tag in inp.tags
        if tag.key == "mlflow.data.context"
    }
    assert contexts == {"train", "validation", "test"}
    assert {inp.dataset.digest for inp in data.inputs.dataset_inputs} == {small_splits.digest}
    sizes = {"train": 2000, "validation": 500, "test": 1000}
    for inp in data.inputs.dataset_inputs:
        (context,) = [tag.value for tag in inp.tags if tag.key == "mlflow.data.context"]
        dataset = inp.dataset
        assert dataset.name == f"{small_splits.info.name}-{context}"
        assert dataset.source_type == "local"
        assert json.loads(dataset.source) == {"uri": small_splits.info.source}
        assert json.loads(dataset.profile or "{}")["features_shape"] == [sizes[context], 28, 28]
        assert "mlflow_tensorspec" in json.loads(dataset.schema or "{}")
    assert data.data.tags["dataset.name"] == small_splits.info.name
    # Artifacts live beside the SQLite file, not in the working folder.
    assert str(tmp_path) in data.info.artifact_uri


def test_child_runs_are_nested_explicitly(store: str) -> None:
    tracker = Tracker("nesting", store)
    parent = tracker.start_run("study-x", tags={"role": "parent"})
    child = tracker.start_run("trial-000", parent_run_id=parent.run_id)
    client = MlflowClient(store)
    assert client.get_run(child.run_id).data.tags["mlflow.parentRunId"] == parent.run_id
    assert tracker.find_runs({"role": "parent"}) == [parent.run_id]
    child.end("KILLED")
    assert client.get_run(child.run_id).info.status == "KILLED"


def test_the_fallback_sample_is_recorded_as_such(store: str, tiny_config: TrainConfig) -> None:
    from mnist_models.config import DataConfig
    from mnist_models.data import load_mnist, make_splits

    splits = make_splits(load_mnist(dataset="sample"), DataConfig(train_size=400), 0)
    tracker = Tracker("sample", store)
    run = tracker.start_run("sample")
    train_logged(run, tiny_config.replace({"epochs": 1}), splits)
    run.end()
    data = MlflowClient(store).get_run(run.run_id)
    assert data.data.tags["dataset.name"] == "mnist-sample"
    assert data.data.tags["dataset.source"].endswith("mnist_5k.csv.gz")
    assert data.data.tags["dataset.sizes"] == "360/40/1000"
    assert {i.dataset.name for i in data.inputs.dataset_inputs} == {
        "mnist-sample-train",
        "mnist-sample-validation",
        "mnist-sample-test",
    }


def epoch(number: int) -> EpochResult:
    return EpochResult(number, 1.0 / number, 0.5, 1.5 / number, 0.4 + number / 100, 0.001, 0.1)


def test_epoch_metrics_are_written_in_batches_and_none_is_lost_at_the_end(store: str) -> None:
    client = MlflowClient(store)
    run = Tracker("unit", store).start_run("batched")
    run.epoch_flush_seconds = 3600.0  # nothing but the first epoch is due before the end

    def logged_steps() -> list[int]:
        return [m.step for m in client.get_metric_history(run.id, "val_accuracy")]

    for number in (1, 2, 3):
        run.log_epoch(epoch(number))
    assert logged_steps() == [1]  # the first epoch at once, so the UI shows the run's start
    run.end("KILLED")  # also a pruned or interrupted run keeps every epoch it trained
    assert logged_steps() == [1, 2, 3]
    history = client.get_metric_history(run.id, "val_loss")
    assert [m.value for m in history] == pytest.approx([1.5, 0.75, 0.5])
    assert client.get_run(run.id).info.status == "KILLED"

    eager = Tracker("unit", store).start_run("eager")
    eager.epoch_flush_seconds = 0.0
    eager.log_epoch(epoch(1))
    eager.log_epoch(epoch(2))
    assert [m.step for m in client.get_metric_history(eager.id, "train_loss")] == [1, 2]
    with pytest.raises(ValueError, match="epoch_flush_seconds=-1"):
        RunLogger(client, eager.id, epoch_flush_seconds=-1)


def test_fluent_tracking_uri_leaves_the_environment_as_it_found_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CNN trial logs its model through MLflow's fluent API; afterwards, processes the sweep
    starts must not inherit that store as MLFLOW_TRACKING_URI (nor the cwd's default)."""
    import os

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with fluent_tracking_uri(store):
        assert os.environ["MLFLOW_TRACKING_URI"] == store
    assert "MLFLOW_TRACKING_URI" not in os.environ
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///chosen.db")
    with fluent_tracking_uri(store):
        pass
    assert os.environ["MLFLOW_TRACKING_URI"] == "sqlite:///chosen.db"
