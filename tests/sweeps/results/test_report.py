"""The study report on the parent run: logged by every sweep, again by ``mnist-sweep report``."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import matplotlib
import numpy as np
import optuna
import pytest
from matplotlib import pyplot as plt
from mlflow import MlflowClient
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial
from scipy import stats

from mnist_models.stats import Summary
from sweeps.cli import main
from sweeps.results import report
from sweeps.results.report import (
    INTERVAL_COLUMNS,
    _save_figure,
    draw_study_figures,
    log_study_report,
    top_trials,
    trial_rows,
)
from sweeps.store.keys import REPEAT_SEEDS_ATTR, TEST_REPEATS_ATTR, VAL_REPEATS_ATTR
from sweeps.store.ranking import value_text
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


# Trial 0 and 2 trained three times with common seeds, trial 1 once, trial 3 failed.
VAL_0, TEST_0 = [0.97, 0.98, 0.975], [0.968, 0.972, 0.971]
VAL_2, TEST_2 = [0.95, 0.99, 0.96], [0.955, 0.985, 0.962]
OLD_COLUMNS = [
    *["number", "state", "value", "datetime_start", "duration_s", "params_lr"],
    *["user_attrs_test_accuracy", "user_attrs_epochs_trained", "user_attrs_mlflow_run_id"],
]


def _repeated_study(repeats: bool = True) -> optuna.Study:
    """Three completed trials and a failed one; without ``repeats`` all were trained once."""
    study = optuna.create_study(study_name="repeated", direction="maximize")
    space = {"lr": FloatDistribution(1e-3, 5e-3, log=True)}
    for number, (val, test) in enumerate([(VAL_0, TEST_0), ([0.96], [0.955]), (VAL_2, TEST_2)]):
        attrs: dict[str, object] = {"test_accuracy": float(np.mean(test)), "mlflow_run_id": "r"}
        if repeats and len(val) > 1:
            seeds = [11, 12, 13]
            attrs |= {REPEAT_SEEDS_ATTR: seeds, VAL_REPEATS_ATTR: val, TEST_REPEATS_ATTR: test}
        study.add_trial(
            create_trial(
                value=float(np.mean(val)),
                params={"lr": 1e-3 * (number + 1)},
                distributions=space,
                user_attrs=attrs,
            )
        )
    study.add_trial(create_trial(state=TrialState.FAIL, params={"lr": 2e-3}, distributions=space))
    return study


def _t_interval(values: list[float]) -> tuple[float, float]:
    """The 95% Student-t interval of the mean, straight from scipy."""
    low, high = stats.t.interval(
        0.95, df=len(values) - 1, loc=np.mean(values), scale=stats.sem(values)
    )
    return float(low), float(high)


def test_rows_of_repeated_trials_carry_their_t_intervals() -> None:
    rows = trial_rows(_repeated_study().trials)
    for row, val, test in ((rows[0], VAL_0, TEST_0), (rows[2], VAL_2, TEST_2)):
        assert row["value"] == pytest.approx(np.mean(val))
        assert row["value_std"] == pytest.approx(np.std(val, ddof=1))
        assert (row["value_ci_low"], row["value_ci_high"]) == pytest.approx(_t_interval(val))
        assert row["repeats"] == 3
        low, high = row["test_accuracy_ci_low"], row["test_accuracy_ci_high"]
        assert (low, high) == pytest.approx(_t_interval(test))
        assert row["value_ci_low"] < row["value"] < row["value_ci_high"]
    # Known numbers: mean 0.975, sd 0.005, t(0.975; 2) = 4.303, so 0.975 -+ 0.01242.
    assert rows[0]["value_ci_low"] == pytest.approx(0.96258, abs=1e-5)
    assert rows[0]["value_ci_high"] == pytest.approx(0.98742, abs=1e-5)
    json.dumps(rows, allow_nan=False)  # trials.json stays strict JSON


def test_rows_of_single_runs_fill_no_interval_and_keep_the_old_columns() -> None:
    repeated, single = (
        trial_rows(_repeated_study().trials),
        trial_rows(_repeated_study(False).trials),
    )
    for row in [repeated[1], repeated[3], *single]:  # trained once, failed, a study without repeats
        assert {column: row[column] for column in INTERVAL_COLUMNS} == dict.fromkeys(
            INTERVAL_COLUMNS
        )
    for row in repeated + single:
        assert [c for c in row if c not in INTERVAL_COLUMNS] == OLD_COLUMNS
        assert set(INTERVAL_COLUMNS) <= set(row)  # one table shape, whatever the study
    assert [row["value"] for row in single] == [row["value"] for row in repeated]


def test_value_text_gives_the_interval_only_with_repeats() -> None:
    trials = _repeated_study().trials
    low, high = _t_interval(VAL_0)
    assert value_text(trials[0]) == f"{np.mean(VAL_0):.4f} ± {(high - low) / 2:.4f}"
    assert value_text(trials[0]) == "0.9750 ± 0.0124"
    assert value_text(trials[1]) == "0.9600"
    assert value_text(trials[3]) == "-"  # failed: no value
    assert all("±" not in value_text(t) for t in _repeated_study(False).trials)


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_top_trials_are_the_best_completed_ones_first(direction: str) -> None:
    study = optuna.create_study(direction=direction)
    values = [0.90, 0.95, 0.91, 0.97, 0.93, 0.92, 0.96, 0.94, 0.89, 0.98, 0.88, 0.95]
    for value in values:
        study.add_trial(create_trial(value=value))
    study.add_trial(create_trial(state=TrialState.FAIL))
    best_first = sorted(range(len(values)), key=lambda n: values[n], reverse=True)
    if direction == "minimize":
        best_first = sorted(range(len(values)), key=lambda n: values[n])
    assert [t.number for t in top_trials(study)] == best_first[:10]
    assert [t.number for t in top_trials(study, 3)] == best_first[:3]


def test_top_trials_figure_is_drawn_only_for_repeated_trials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[tuple[list[str], dict[str, list[Summary | None]]]] = []
    real = report.intervals_figure

    def spy(labels: list[str], series: dict[str, list[Summary | None]], title: str) -> object:
        drawn.append((labels, series))
        return real(labels, series, title)

    monkeypatch.setattr(report, "intervals_figure", spy)
    figures = plt.get_fignums()
    (tmp_path / "single").mkdir()
    assert "top_trials.png" not in [
        p.name for p in draw_study_figures(_repeated_study(False), tmp_path / "single")
    ]
    assert not drawn and not (tmp_path / "single" / "top_trials.png").exists()
    (tmp_path / "repeated").mkdir()
    written = draw_study_figures(_repeated_study(), tmp_path / "repeated")
    assert written[-1] == tmp_path / "repeated" / "top_trials.png"
    assert written[-1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == figures
    ((labels, series),) = drawn
    assert labels == ["trial 0\n(3 runs)", "trial 2\n(3 runs)", "trial 1\n(1 run)"]  # best first
    validation, test = series["validation"], series["test"]
    for summary, values in ((validation[0], VAL_0), (validation[1], VAL_2), (test[1], TEST_2)):
        assert summary is not None and summary.n == 3
        assert (summary.low, summary.high) == pytest.approx(_t_interval(values))
    assert validation[2] is not None and not validation[2].has_interval  # trained once
    assert validation[2].mean == 0.96


def test_a_repeated_study_logs_top_trials_and_the_intervals(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    store = f"sqlite:///{tmp_path_factory.getbasetemp() / 'repeated-mlflow.db'}"
    run = Tracker("repeated", store).start_run("study-repeated")
    logged = log_study_report(run.client, run.run_id, _repeated_study())
    assert "study/top_trials.png" in logged
    assert "study/optimization_history.png" in logged
    folder = Path(
        run.client.download_artifacts(run.run_id, "study", str(tmp_path_factory.mktemp("d")))
    )
    with open(folder / "trials.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["repeats"] for row in rows] == ["3", "", "3", ""]
    low, high = _t_interval(VAL_2)
    assert float(rows[2]["value_ci_low"]) == pytest.approx(low)
    assert float(rows[2]["value_ci_high"]) == pytest.approx(high)
    assert rows[1]["value_ci_low"] == rows[1]["test_accuracy_ci_high"] == ""


@pytest.mark.parametrize(
    ("sweep", "label"),
    [
        ({"repeats": 1, "pruner": "median"}, "epoch"),
        ({"repeats": 3, "pruner": "median"}, "repeat × 10 + epoch (mean over the repeats so far)"),
        ({"repeats": 5, "pruner": "wilcoxon"}, "repeat (its final value)"),
    ],
)
def test_intermediate_values_say_what_a_step_is(sweep: dict, label: str) -> None:
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("sweep_config", {"sweep": sweep, "fixed": {"epochs": 10}})
    assert report._step_label(study) == label
