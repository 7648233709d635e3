"""``mnist-sweep reproduce RUN_ID``: a logged run re-trained from its config.toml, same numbers."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pytest
import scipy.stats
from mlflow import MlflowClient
from mlflow.entities import Run

from mnist_models.seeds import repeat_seeds
from sweeps.cli import main
from sweeps.verify.reproduce import spread_sentence

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


# -- --repeats K: K seeds nested under one new run, the original judged by their spread ------


def _children(client: MlflowClient, parent: Run) -> list[Run]:
    """The runs nested under ``parent``, in repeat order."""
    runs = client.search_runs(
        [parent.info.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    return sorted(runs, key=lambda run: int(run.data.tags["repeat"]))


def _all_runs(store: str) -> int:
    client = MlflowClient(store)
    ids = [experiment.experiment_id for experiment in client.search_experiments()]
    return len(client.search_runs(ids, max_results=50000))


def _prediction_interval(values: list[float]) -> tuple[float, float]:
    """Straight from scipy, not from mnist_models.stats: mean ± t(n-1) sd sqrt(1 + 1/n)."""
    n, mean, sd = len(values), float(np.mean(values)), float(np.std(values, ddof=1))
    half = float(scipy.stats.t.ppf(0.975, df=n - 1)) * sd * math.sqrt(1 + 1 / n)
    return mean - half, mean + half


def _row(err: str, key: str) -> str:
    """The table's row of ``key``."""
    (row,) = [line for line in err.splitlines() if line.startswith(f"│ {key} ")]
    return row


def _train_run(client: MlflowClient) -> Run:
    experiment = client.get_experiment_by_name("one")
    assert experiment is not None
    (original,) = client.search_runs(
        [experiment.experiment_id], "tags.`mnist_sweeps.role` = 'train'"
    )
    return original


@pytest.fixture(scope="module")
def repeated(logged: dict[str, str], mnist_dir: Path) -> dict[str, Any]:
    """``reproduce TRAIN_RUN --repeats 3`` into experiment ``reps``: its run and its output."""
    client = MlflowClient(logged["store"])
    original = _train_run(client)
    argv = ["reproduce", original.info.run_id, "--repeats", "3", "--experiment", "reps"]
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(out):
        patch.setenv("MPLBACKEND", "Agg")
        code = main([*argv, "--tracking-uri", logged["store"], "--data-dir", str(mnist_dir)])
    assert code == 0, out.getvalue()
    (parent,) = _reproductions(client, "reps", original.info.run_id)
    return {"original": original, "parent": parent, "err": out.getvalue()}


def test_repeats_train_k_seeds_nested_under_one_run(
    repeated: dict[str, Any], logged: dict[str, str]
) -> None:
    client = MlflowClient(logged["store"])
    original, parent = repeated["original"], repeated["parent"]
    assert parent.info.status == "FINISHED" and "mlflow.parentRunId" not in parent.data.tags
    assert parent.data.tags["mnist_sweeps.role"] == "reproduce"
    assert parent.data.params["repeats"] == "3"
    children = _children(client, parent)
    assert len(children) == 3
    seeds = [int(child.data.params["seed"]) for child in children]
    assert seeds == repeat_seeds(int(original.data.params["seed"]), 3)
    assert seeds[0] == 4 and len(set(seeds)) == 3, "the original's own seed comes first"
    assert all(child.info.status == "FINISHED" for child in children)
    assert all(child.data.tags["mnist_sweeps.role"] == "repeat" for child in children)
    assert all("reproduces" not in child.data.tags for child in children)
    _assert_same_results(original, children[0])  # the same seed: the same run
    # The parent's figures are the repeats' means.
    for key in ("val_accuracy", "test_accuracy"):
        values = [child.data.metrics[key] for child in children]
        assert parent.data.metrics[key] == pytest.approx(np.mean(values), abs=1e-12)
    assert f"MLflow run {parent.info.run_id}" in repeated["err"]
    assert "(3 repeats nested under it)" in repeated["err"]


def test_repeats_print_the_mean_and_judge_the_original_by_the_prediction_interval(
    repeated: dict[str, Any], logged: dict[str, str]
) -> None:
    client = MlflowClient(logged["store"])
    original, err = repeated["original"], repeated["err"]
    children = _children(client, repeated["parent"])
    for key in ("val_accuracy", "test_accuracy", "test_loss"):
        values = [child.data.metrics[key] for child in children]
        low, high = _prediction_interval(values)
        row = _row(err, key)
        assert f"{original.data.metrics[key]:.6f}" in row, "the original beside the mean"
        assert f" {np.mean(values):.6f} ± " in row
        assert f"{low:.6f}-{high:.6f}" in row
        inside = low <= original.data.metrics[key] <= high
        assert row.rstrip(" │").endswith("yes" if inside else "no")
    for key in ("val_accuracy", "test_accuracy"):
        values = [child.data.metrics[key] for child in children]
        low, high = _prediction_interval(values)
        where = "inside" if low <= original.data.metrics[key] <= high else "outside"
        assert (
            f"original {key} {original.data.metrics[key]:.6f} lies {where} the 95% prediction "
            f"interval of the 3 reproductions ({low:.6f} to {high:.6f})"
        ) in err


def test_a_repeated_run_is_reproduced_with_as_many_repeats_by_default(
    repeated: dict[str, Any],
    logged: dict[str, str],
    mnist_dir: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = MlflowClient(logged["store"])
    first = repeated["parent"]  # param repeats = 3 and a config.toml, like a repeated trial
    capsys.readouterr()
    argv = ["reproduce", first.info.run_id, "--tracking-uri", logged["store"]]
    assert main([*argv, "--data-dir", str(mnist_dir)]) == 0
    (again,) = _reproductions(client, "reps", first.info.run_id)
    children = _children(client, again)
    assert [c.data.params["seed"] for c in children] == [
        c.data.params["seed"] for c in _children(client, first)
    ]
    err = capsys.readouterr().err
    assert "repeats: 3, as the original run" in err
    for key in ("val_accuracy", "test_accuracy"):  # same seeds: the same means
        assert again.data.metrics[key] == first.data.metrics[key]


def test_spread_sentence_says_outside_when_the_original_is_beyond_the_interval() -> None:
    finals = [{"val_accuracy": v} for v in (0.91, 0.92, 0.93)]
    low, high = _prediction_interval([0.91, 0.92, 0.93])
    far = spread_sentence("val_accuracy", high + 0.001, finals)
    near = spread_sentence("val_accuracy", high - 0.001, finals)
    assert far is not None and " lies outside " in far and f"({low:.6f} to {high:.6f})" in far
    assert near is not None and " lies inside " in near
    assert spread_sentence("val_accuracy", None, finals) is None
    assert spread_sentence("val_accuracy", 0.9, [{"val_accuracy": math.nan}] * 3) is None


def test_repeats_1_is_todays_single_run(
    logged: dict[str, str], mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient(logged["store"])
    original = _train_run(client)
    capsys.readouterr()
    argv = ["reproduce", original.info.run_id, "--repeats", "1", "--experiment", "once"]
    assert main([*argv, "--tracking-uri", logged["store"], "--data-dir", str(mnist_dir)]) == 0
    (new,) = _reproductions(client, "once", original.info.run_id)
    assert "mlflow.parentRunId" not in new.data.tags and "repeats" not in new.data.params
    experiment = client.get_experiment_by_name("once")
    assert experiment is not None
    assert len(client.search_runs([experiment.experiment_id])) == 1, "no nested runs"
    _assert_same_results(original, new)
    err = capsys.readouterr().err
    assert "identical" in _row(err, "val_accuracy") and "prediction interval" not in err


@pytest.mark.parametrize("flags", [["RUN"], ["--reported", "baseline"]])
def test_repeats_below_1_are_refused_before_any_run(
    flags: list[str], logged: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    client = MlflowClient(logged["store"])
    flags = [_train_run(client).info.run_id if flag == "RUN" else flag for flag in flags]
    before = _all_runs(logged["store"])
    capsys.readouterr()
    assert main(["reproduce", *flags, "--repeats", "0", "--tracking-uri", logged["store"]]) == 2
    err = capsys.readouterr().err.strip()
    assert "--repeats 0: expected >= 1" in err and "\n" not in err
    assert _all_runs(logged["store"]) == before
    assert client.get_experiment_by_name("reported-runs") is None
