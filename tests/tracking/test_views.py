"""The experiment tags that make the MLflow UI open a sweep on a useful runs table."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow import MlflowClient

from tracking import Tracker
from tracking.views import KIND_TAG, MODEL_TRAINING, VIEW_TAG, experiment_url, save_sweep_view


def test_new_experiments_are_model_training_experiments(tmp_path: Path) -> None:
    tracker = Tracker("kind", f"sqlite:///{tmp_path / 'mlflow.db'}")
    tags = tracker.client.get_experiment(tracker.experiment_id).tags
    assert tags[KIND_TAG] == MODEL_TRAINING


def test_views_of_several_studies_merge_and_keep_other_state(tmp_path: Path) -> None:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment("shared")
    client.set_experiment_tag(experiment_id, VIEW_TAG, json.dumps({"orderByAsc": True}))
    save_sweep_view(client, experiment_id, ["lr", "batch_size"])
    save_sweep_view(client, experiment_id, ["lr", "cnn.filters"], metrics=["val_accuracy"])
    experiment = client.get_experiment(experiment_id)
    state = json.loads(experiment.tags[VIEW_TAG])
    assert state["orderByAsc"] is True
    assert state["selectedColumns"][:3] == [
        "params.`lr`",
        "params.`batch_size`",
        "metrics.`val_accuracy`",
    ]
    assert state["selectedColumns"].count("params.`lr`") == 1
    assert "params.`cnn.filters`" in state["selectedColumns"]
    assert experiment.tags[KIND_TAG] == MODEL_TRAINING  # set on an experiment made elsewhere
    url = experiment_url("http://127.0.0.1:5000/", experiment)
    assert url == (
        f"http://127.0.0.1:5000/#/experiments/{experiment_id}/runs"
        "?workflowType=machine_learning&viewStateShareKey=sweeps"
    )


def test_a_damaged_view_is_replaced_and_plain_experiments_get_no_share_key(tmp_path: Path) -> None:
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = client.create_experiment("plain")
    assert "viewStateShareKey" not in experiment_url(
        "http://h:1", client.get_experiment(experiment_id)
    )
    client.set_experiment_tag(experiment_id, VIEW_TAG, "{not json")
    save_sweep_view(client, experiment_id, ["dropout"], metrics=[])
    state = json.loads(client.get_experiment(experiment_id).tags[VIEW_TAG])
    assert state == {"selectedColumns": ["params.`dropout`"]}
