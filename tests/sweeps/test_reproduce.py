"""``mnist-sweep reproduce RUN_ID``: a logged run re-trained from its config.toml, same numbers."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from mlflow.entities import Run

from sweeps.cli import main

FINAL = ["val_accuracy", "val_loss", "test_accuracy", "test_loss", "epochs_trained"]
FINAL += [f"test_accuracy_digit_{digit}" for digit in range(10)]


def tiny(mnist_dir: Path) -> list[str]:
    """The flags of a seconds-long MLP run on real MNIST."""
    return [
        *["--data-dir", str(mnist_dir), "--dataset", "mnist", "--train-size", "800"],
        *["--epochs", "2", "--set", "data.test_size=400", "--set", "mlp.hidden_sizes=[32]"],
    ]


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> dict[str, str]:
    """A one-trial study ``rep`` and one ``train`` run (experiment ``one``) in one store."""
    work = tmp_path_factory.mktemp("reproduce")
    where = {
        "storage": f"sqlite:///{work / 'optuna.db'}",
        "store": f"sqlite:///{work / 'mlflow.db'}",
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MPLBACKEND", "Agg")
        sweep = ["sweep", "--model", "mlp", "--trials", "1", "--study", "rep", "--seed", "11"]
        sweep += ["--storage", where["storage"], "--tracking-uri", where["store"]]
        assert main([*sweep, *tiny(mnist_dir)]) == 0
        train = ["train", "--tracking-uri", where["store"], "--experiment", "one", "--seed", "4"]
        assert main([*train, "--set", "lr=0.004", *tiny(mnist_dir)]) == 0
    return where


def _reproductions(client: MlflowClient, experiment: str, run_id: str) -> list[Run]:
    found = client.get_experiment_by_name(experiment)
    assert found is not None
    return client.search_runs([found.experiment_id], f"tags.reproduces = '{run_id}'")


def _assert_same_results(original: Run, new: Run) -> None:
    for key in FINAL:
        assert new.data.metrics[key] == original.data.metrics[key], key
    assert new.data.params == original.data.params
    assert new.data.tags["dataset.digest"] == original.data.tags["dataset.digest"]


def test_reproduce_a_trial_gives_the_same_numbers_in_a_new_run(
    logged: dict[str, str], mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trial = optuna.load_study(study_name="rep", storage=logged["storage"]).best_trial
    run_id = trial.user_attrs["mlflow_run_id"]
    capsys.readouterr()
    argv = ["reproduce", run_id, "--tracking-uri", logged["store"], "--data-dir", str(mnist_dir)]
    assert main(argv) == 0
    client = MlflowClient(logged["store"])
    original = client.get_run(run_id)
    (new,) = _reproductions(client, "rep", run_id)
    assert new.info.run_id != run_id and new.info.status == "FINISHED"
    assert new.info.run_name == f"reproduce-{original.info.run_name}"
    assert new.data.tags["mnist_sweeps.role"] == "reproduce"
    assert new.data.tags["model"] == "mlp"
    assert "mlflow.parentRunId" not in new.data.tags
    _assert_same_results(original, new)
    assert new.data.metrics["val_accuracy"] == trial.value
    err = capsys.readouterr().err
    (row,) = [line for line in err.splitlines() if " val_accuracy " in line]
    assert row.count(f"{trial.value:.6f}") == 2 and "identical" in row
    assert "Downloading artifacts" not in err
    assert f"MLflow run {new.info.run_id}" in err


def test_reproduce_a_train_run_into_another_experiment(
    logged: dict[str, str], mnist_dir: Path
) -> None:
    client = MlflowClient(logged["store"])
    experiment = client.get_experiment_by_name("one")
    assert experiment is not None
    (original,) = client.search_runs(
        [experiment.experiment_id], "tags.`mnist_sweeps.role` = 'train'"
    )
    run_id = original.info.run_id
    argv = ["reproduce", run_id, "--tracking-uri", logged["store"], "--experiment", "again"]
    assert main([*argv, "--data-dir", str(mnist_dir)]) == 0
    (new,) = _reproductions(client, "again", run_id)
    assert new.info.status == "FINISHED"
    assert float(new.data.params["lr"]) == 0.004 and new.data.params["seed"] == "4"
    _assert_same_results(original, new)


def test_an_unknown_run_id_is_refused(
    logged: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["reproduce", "0123abcd", "--tracking-uri", logged["store"]]) == 2
    assert "RUN_ID '0123abcd': no such run in" in capsys.readouterr().err


def test_a_run_without_config_toml_is_refused(
    logged: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient(logged["store"])
    experiment = client.get_experiment_by_name("rep")
    assert experiment is not None
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`mnist_sweeps.role` = 'study'")
    assert main(["reproduce", parent.info.run_id, "--tracking-uri", logged["store"]]) == 2
    err = capsys.readouterr().err
    assert f"run {parent.info.run_id} (study-rep) has no config.toml artifact" in err


def test_a_missing_tracking_store_is_not_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "mlflow.db"
    assert main(["reproduce", "0123abcd", "--tracking-uri", f"sqlite:///{path}"]) == 2
    assert f"no MLflow store at {path}" in capsys.readouterr().err
    assert not path.exists()


# Stated tolerance for CNN reproductions on the CPU backend (TensorFlow with op determinism
# on; the same machine): final accuracies and losses agree to this absolute difference.
CNN_TOLERANCE = 1e-6


def test_reproduce_a_cnn_run_within_the_stated_tolerance(tmp_path: Path, mnist_dir: Path) -> None:
    pytest.importorskip("keras")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    flags = ["--data-dir", str(mnist_dir), "--tracking-uri", store]
    small = ["--train-size", "400", "--epochs", "1", "--set", "data.test_size=300"]
    assert main(["train", "--model", "cnn", "--experiment", "cnn", *flags, *small]) == 0
    client = MlflowClient(store)
    (original,) = client.search_runs([client.get_experiment_by_name("cnn").experiment_id])
    assert main(["reproduce", original.info.run_id, *flags]) == 0
    (new,) = _reproductions(client, "cnn", original.info.run_id)
    for key in ("val_accuracy", "val_loss", "test_accuracy", "test_loss"):
        assert abs(new.data.metrics[key] - original.data.metrics[key]) <= CNN_TOLERANCE, key
    assert new.data.params == original.data.params
