"""The study report on the parent run: logged by every sweep, again by ``mnist-sweep report``."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import matplotlib
import optuna
import pytest
from matplotlib import pyplot as plt
from mlflow import MlflowClient
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from sweeps.cli import main
from sweeps.report import _save_figure, log_study_report
from tracking import Tracker

PLOTS = ["intermediate_values", "optimization_history", "param_importances", "parallel_coordinate"]
TABLES = ["study/trials.csv", "study/trials.json"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> dict[str, str]:
    work = tmp_path_factory.mktemp("report")
    where = {
        "storage": f"sqlite:///{work / 'optuna.db'}",
        "store": f"sqlite:///{work / 'mlflow.db'}",
        "work": str(work),
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MPLBACKEND", "Agg")
        code = main(
            [
                *["sweep", "--model", "mlp", "--trials", "3", "--study", "rep", "--seed", "5"],
                *["--storage", where["storage"], "--tracking-uri", where["store"]],
                *["--data-dir", str(mnist_dir), "--dataset", "mnist", "--train-size", "1500"],
                *["--epochs", "2", "--set", "data.test_size=500", "--set", "mlp.hidden_sizes=[32]"],
            ]
        )
    assert code == 0
    return where


def _parent(store: str) -> tuple[MlflowClient, str]:
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("rep")
    (run,) = client.search_runs([experiment.experiment_id], "tags.`mnist_sweeps.role` = 'study'")
    return client, run.info.run_id


def _study_artifacts(client: MlflowClient, run_id: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id, "study")}


def test_a_sweep_logs_plots_and_the_trials_table(swept: dict[str, str]) -> None:
    client, run_id = _parent(swept["store"])
    expected = {f"study/{name}.png" for name in PLOTS} | set(TABLES)
    assert _study_artifacts(client, run_id) == expected
    study = optuna.load_study(study_name="rep", storage=swept["storage"])
    folder = Path(client.download_artifacts(run_id, "study", swept["work"]))
    with open(folder / "trials.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [int(row["number"]) for row in rows] == [t.number for t in study.trials] == [0, 1, 2]
    for row, trial in zip(rows, study.trials, strict=True):
        assert float(row["value"]) == trial.value
        assert row["state"] == "COMPLETE"
        assert float(row["params_lr"]) == trial.params["lr"]
        assert row["user_attrs_mlflow_run_id"] == trial.user_attrs["mlflow_run_id"]
        assert float(row["user_attrs_test_accuracy"]) == trial.user_attrs["test_accuracy"]
    table = json.loads((folder / "trials.json").read_text())
    assert table["study"] == "rep"
    assert [t["value"] for t in table["trials"]] == [t.value for t in study.trials]
    for name in PLOTS:
        assert (folder / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_command_logs_the_report_again(
    swept: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    client, run_id = _parent(swept["store"])
    artifacts = Path(url2pathname(urlparse(client.get_run(run_id).info.artifact_uri).path))
    shutil.rmtree(artifacts / "study")
    assert not _study_artifacts(client, run_id)
    argv = ["report", "--study", "rep", "--storage", swept["storage"]]
    assert main([*argv, "--tracking-uri", swept["store"]]) == 0
    assert len(_study_artifacts(client, run_id)) == 6
    out = capsys.readouterr().err
    assert f"study/trials.json to MLflow run {run_id}" in out
    assert "study/param_importances.png" in out and "not drawn" not in out


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--study", "nope"], "--study 'nope': no such study in"),
        (["--study", "rep", "--experiment", "other"], "--experiment 'other': no such experiment"),
        (["--study", "rep", "--storage", "sqlite:///{work}/missing/optuna.db"], "no such file"),
        (["--study", "rep", "--tracking-uri", "sqlite:///{work}/missing/m.db"], "no such MLflow"),
    ],
)
def test_report_of_an_unknown_study_exits_2_with_one_line(
    swept: dict[str, str], extra: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = [arg.format(work=swept["work"]) for arg in extra]
    argv = ["report", "--storage", swept["storage"], "--tracking-uri", swept["store"], *extra]
    assert main(argv) == 2
    out = capsys.readouterr().err.strip()
    assert out.startswith("mnist-sweep: error: --") and expected in out and "\n" not in out
    assert MlflowClient(swept["store"]).get_experiment_by_name("other") is None
    assert not (Path(swept["work"]) / "missing").exists()


@pytest.mark.parametrize("completed", [0, 1])
def test_few_trials_log_the_table_and_skip_what_needs_more(
    completed: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    store = f"sqlite:///{tmp_path_factory.getbasetemp() / 'few-trials-mlflow.db'}"
    study = optuna.create_study(study_name=f"few{completed}", direction="maximize")
    space = {"lr": FloatDistribution(1e-3, 5e-3, log=True)}
    study.add_trial(create_trial(state=TrialState.FAIL, params={"lr": 2e-3}, distributions=space))
    for lr in (1e-3, 4e-3)[:completed]:
        study.add_trial(
            create_trial(
                value=0.9,
                params={"lr": lr},
                distributions=space,
                intermediate_values={1: 0.8, 2: 0.9},
                user_attrs={"test_accuracy": 0.89, "mlflow_run_id": "abc"},
            )
        )
    run = Tracker(f"few{completed}", store).start_run("study-few")
    figures, facecolor = plt.get_fignums(), matplotlib.rcParams["axes.facecolor"]
    logged = log_study_report(run.client, run.run_id, study)
    plots = ["study/intermediate_values.png", "study/optimization_history.png"][: 2 * completed]
    assert logged == sorted([*TABLES, *plots])
    assert {a.path for a in run.client.list_artifacts(run.run_id, "study")} == set(logged)
    assert plt.get_fignums() == figures, "a figure was left open"
    assert matplotlib.rcParams["axes.facecolor"] == facecolor, "Optuna's style leaked"


def test_a_figure_that_fails_to_draw_warns_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> None:
        plt.subplots()
        raise RuntimeError("no renderer\nsecond line")

    figures = plt.get_fignums()
    _save_figure(tmp_path / "broken.png", "title", (4, 3), broken)
    assert not (tmp_path / "broken.png").exists()
    assert plt.get_fignums() == figures
    assert capsys.readouterr().err == (
        "warning: study report: broken.png not drawn: RuntimeError: no renderer\n"
    )


def test_report_help_describes_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["report", "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--study", "--storage", "--tracking-uri", "--experiment", "--output"):
        assert flag in text
