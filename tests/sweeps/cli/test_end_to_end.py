"""A real 3-trial sweep through the CLI, read back from MLflow and Optuna."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from helpers.cli import run_cli
from mlflow import MlflowClient

TINY = [
    "--train-size",
    "1500",
    "--epochs",
    "2",
    "--set",
    "data.test_size=500",
    "--set",
    "mlp.hidden_sizes=[32]",
]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path):
    work = tmp_path_factory.mktemp("sweep")
    store = f"sqlite:///{work / 'mlflow.db'}"
    storage = f"sqlite:///{work / 'optuna.db'}"
    args = [
        "sweep",
        "--model",
        "mlp",
        "--trials",
        "3",
        "--study",
        "e2e",
        "--storage",
        storage,
        "--tracking-uri",
        store,
        "--seed",
        "7",
        *TINY,
    ]
    done = run_cli(args, work, mnist_dir)
    assert done.returncode == 0, done.stderr
    return work, store, storage, args, done


def _runs(store: str):
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("e2e")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    parents = [r for r in runs if r.data.tags.get("mnist_sweeps.role") == "study"]
    children = [r for r in runs if r.data.tags.get("mnist_sweeps.role") == "trial"]
    return client, parents, children


def test_parent_run_and_three_children(swept) -> None:
    work, store, storage, _, done = swept
    client, parents, children = _runs(store)
    assert len(parents) == 1 and len(children) == 3
    parent = parents[0]
    assert parent.info.run_name == "study-e2e"
    assert parent.info.status == "FINISHED"
    assert parent.data.params["storage"] == storage
    assert parent.data.params["sampler"] == "TPESampler"
    assert parent.data.tags["optuna.sampler"] == "tpe"
    study = optuna.load_study(study_name="e2e", storage=storage)
    assert float(parent.data.tags["best.value"]) == pytest.approx(study.best_value)
    assert parent.data.tags["best.trial"] == str(study.best_trial.number)
    note = parent.data.tags["mlflow.note.content"]
    assert note.startswith("**Study `e2e`**: 3 complete.")
    assert f"| {study.best_trial.number} | {study.best_value:.4f} |" in note
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        assert child.data.tags["optuna.state"] == "COMPLETE"
        number = int(child.data.tags["optuna.trial"])
        assert child.info.run_name.startswith(f"trial-{number:03d} lr=")
        trial = study.trials[number]
        assert float(child.data.params["lr"]) == pytest.approx(trial.params["lr"])
        assert int(child.data.params["batch_size"]) == trial.params["batch_size"]
        history = client.get_metric_history(child.info.run_id, "val_accuracy")
        assert [m.step for m in history] == [1, 2]
        assert history[-1].value == pytest.approx(trial.value)
        for key in ("train_loss", "train_accuracy", "val_loss"):
            assert len(client.get_metric_history(child.info.run_id, key)) == 2
        assert child.data.metrics["test_accuracy"] > 0.5
        names = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"confusion_matrix.png", "confusion_matrix.json", "config.toml"} <= names
        matrix = json.loads(
            Path(
                client.download_artifacts(child.info.run_id, "confusion_matrix.json", str(work))
            ).read_text()
        )
        assert sum(map(sum, matrix["confusion_matrix"])) == 500
        assert child.inputs.dataset_inputs, "dataset input missing"
    assert "best: trial" in done.stderr


def test_rerun_resumes_the_same_study_and_parent(swept, mnist_dir: Path) -> None:
    work, store, storage, args, _ = swept
    again = run_cli([*args[:4], "4", *args[5:]], work, mnist_dir)  # --trials 4
    assert again.returncode == 0, again.stderr
    assert "3 of 4 trials finished" in again.stderr
    _, parents, children = _runs(store)
    assert len(parents) == 1 and len(children) == 4
    study = optuna.load_study(study_name="e2e", storage=storage)
    assert len(study.trials) == 4


def test_changed_config_on_the_same_study_is_refused(swept, mnist_dir: Path) -> None:
    work, _, _, args, _ = swept
    changed = run_cli([*args, "--set", "dropout=0.3"], work, mnist_dir)
    assert changed.returncode == 2
    assert "exists" in changed.stderr and "different config" in changed.stderr


def test_a_logged_config_retrains_to_the_same_numbers(swept, mnist_dir: Path) -> None:
    work, store, _, _, _ = swept
    client, _, children = _runs(store)
    child = children[0]
    config = client.download_artifacts(child.info.run_id, "config.toml", str(work / "again"))
    done = run_cli(
        ["train", "--config", config, "--tracking-uri", store, "--experiment", "again"],
        work,
        mnist_dir,
    )
    assert done.returncode == 0, done.stderr
    experiment = client.get_experiment_by_name("again")
    (rerun,) = client.search_runs([experiment.experiment_id])
    for key in ("test_accuracy", "test_loss"):
        assert rerun.data.metrics[key] == child.data.metrics[key]
    assert rerun.data.params == child.data.params


def test_train_logs_one_run(tmp_path: Path, mnist_dir: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = run_cli(
        ["train", "--tracking-uri", store, "--experiment", "one", *TINY], tmp_path, mnist_dir
    )
    assert done.returncode == 0, done.stderr
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("one")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert len(client.get_metric_history(run.info.run_id, "train_loss")) == 2
    assert f"{run.data.metrics['test_accuracy']:.4f}" in done.stderr
    assert not (tmp_path / "optuna.db").exists()
