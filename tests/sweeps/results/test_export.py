"""``mnist-sweep studies`` and ``best``: read a real study back, train its best config again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState, create_trial

from mnist_models.config import TrainConfig
from sweeps.cli import main

TINY = [
    *["--data-dir", "{mnist_dir}", "--dataset", "mnist", "--train-size", "1000", "--epochs", "2"],
    *["--set", "data.test_size=500", "--set", "mlp.hidden_sizes=[32]"],
]
SECRET_URLS = ["postgresql://u:secret@127.0.0.1:1/x", "mysql://u:secret@127.0.0.1:1/x"]


def tiny(mnist_dir: Path) -> list[str]:
    """The flags of a seconds-long MLP run on real MNIST."""
    return [arg.format(mnist_dir=mnist_dir) for arg in TINY]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> dict[str, str]:
    """A finished 3-trial MLP study ``exp`` and its MLflow store."""
    work = tmp_path_factory.mktemp("export")
    where = {
        "storage": f"sqlite:///{work / 'optuna.db'}",
        "store": f"sqlite:///{work / 'mlflow.db'}",
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MPLBACKEND", "Agg")
        code = main(
            [
                *["sweep", "--model", "mlp", "--trials", "3", "--study", "exp", "--seed", "3"],
                *["--storage", where["storage"], "--tracking-uri", where["store"]],
                *tiny(mnist_dir),
            ]
        )
    assert code == 0
    return where


def test_best_config_trains_again_to_the_same_numbers(
    swept: dict[str, str], tmp_path: Path, mnist_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "best.toml"
    assert (
        main(["best", "--study", "exp", "--storage", swept["storage"], "--output", str(output)])
        == 0
    )
    best = optuna.load_study(study_name="exp", storage=swept["storage"]).best_trial
    assert f"wrote {output}: trial {best.number} of study exp" in capsys.readouterr().err
    text = output.read_text()
    assert text.startswith("# Best trial of Optuna study 'exp'")
    assert f"# trial {best.number}: val_accuracy = {best.value!r}\n" in text
    assert f"# MLflow run: {best.user_attrs['mlflow_run_id']}\n" in text
    config = TrainConfig.from_toml(output)
    assert config.to_dict() == best.user_attrs["config"]
    for key, value in best.params.items():
        assert config.flat()[key] == value

    train = ["train", "--config", str(output), "--tracking-uri", swept["store"]]
    assert main([*train, "--experiment", "from-best", "--data-dir", str(mnist_dir)]) == 0
    client = MlflowClient(swept["store"])
    experiment = client.get_experiment_by_name("from-best")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.metrics["test_accuracy"] == best.user_attrs["test_accuracy"]
    assert run.data.metrics["val_accuracy"] == best.value


def test_best_writes_best_toml_in_the_working_folder_by_default(
    swept: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["best", "--study", "exp", "--storage", swept["storage"]]) == 0
    assert TrainConfig.from_toml(tmp_path / "best.toml").model == "mlp"


def test_studies_lists_every_study_with_counts_and_best(
    swept: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    other = optuna.create_study(study_name="exp-other", storage=swept["storage"])
    other.add_trial(create_trial(state=TrialState.FAIL))
    other.enqueue_trial({"lr": 0.01})
    capsys.readouterr()
    assert main(["studies", "--storage", swept["storage"]]) == 0
    out = capsys.readouterr().err
    best = optuna.load_study(study_name="exp", storage=swept["storage"]).best_trial
    assert f"2 studies in {swept['storage']}\n" in out
    assert "3 complete" in out and "1 fail" in out and "1 waiting" in out
    assert f"{best.value:.4f} (trial {best.number})" in out
    assert f"batch_size={best.params['batch_size']}" in out


def test_studies_of_an_empty_storage_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.storages.RDBStorage(storage)
    assert main(["studies", "--storage", storage]) == 0
    assert f"no studies in {storage}" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["missing.db", "missing.journal"])
def test_a_missing_storage_is_reported_not_created(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    url = f"sqlite:///{path}" if name.endswith(".db") else str(path)
    assert main(["studies", "--storage", url]) == 2
    assert f"no Optuna storage at {path}" in capsys.readouterr().err
    assert not path.exists()


def test_a_file_without_optuna_tables_is_refused_untouched(
    swept: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    path = Path(swept["store"].removeprefix("sqlite:///"))  # the MLflow store
    assert main(["studies", "--storage", swept["store"]]) == 2
    assert "is not an Optuna storage" in capsys.readouterr().err
    with sqlite3.connect(path) as db:
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'studies'").fetchone()


@pytest.mark.parametrize("url", SECRET_URLS)
@pytest.mark.parametrize("command", [["studies"], ["best", "--study", "exp"]])
def test_a_server_that_cannot_be_reached_is_one_line_without_the_password(
    url: str, command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*command, "--storage", url]) == 2
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "secret" not in text
    assert text.startswith(f"mnist-sweep: error: --storage '{url.replace('secret', '***')}'")
    assert "cannot open it" in text and "Traceback" not in text
    assert len(text.strip().splitlines()) == 1


def test_an_unknown_study_lists_the_known_ones(
    swept: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["best", "--study", "nope", "--storage", swept["storage"]]) == 2
    assert "--study 'nope': no such study" in (err := capsys.readouterr().err)
    assert "(studies: exp" in err


def test_a_study_without_a_completed_trial_has_no_best(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="failing", storage=storage)
    study.add_trial(create_trial(state=TrialState.FAIL))
    output = tmp_path / "best.toml"
    assert main(["best", "--study", "failing", "--storage", storage, "--output", str(output)]) == 2
    assert "--study 'failing': no completed trial yet (1 fail)" in capsys.readouterr().err
    assert not output.exists()
