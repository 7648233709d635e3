"""``--repeats K``: every trial trained K times on common seeds, read back from Optuna and
MLflow; ``train --repeats``; ``best`` with paired tests and ``--confirm`` on fresh seeds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import optuna
import pytest
from helpers.cli import run_cli
from mlflow import MlflowClient
from scipy import stats

from mnist_models.seeds import repeat_seeds
from sweeps.store.keys import REPEAT_SEEDS_ATTR, TEST_REPEATS_ATTR, VAL_REPEATS_ATTR

TINY = ["--train-size", "1200", "--epochs", "2", "--set", "data.test_size=500"]
TINY += ["--set", "mlp.hidden_sizes=[32]"]


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path):
    work = tmp_path_factory.mktemp("repeats")
    args = ["sweep", "--trials", "3", "--repeats", "3", "--pruner", "none", "--study", "rep"]
    args += ["--storage", f"sqlite:///{work / 'optuna.db'}", "--seed", "5", *TINY]
    done = run_cli(args, work, mnist_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    study = optuna.load_study(study_name="rep", storage=f"sqlite:///{work / 'optuna.db'}")
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("rep")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    return work, args, done, study, client, runs


def _role(runs, role: str):
    return [r for r in runs if r.data.tags.get("mnist_sweeps.role") == role]


def test_every_trial_trains_its_config_on_the_same_seeds(swept) -> None:
    _, _, _, study, _, _ = swept
    seeds = repeat_seeds(5, 3)
    for trial in study.trials:
        assert trial.user_attrs[REPEAT_SEEDS_ATTR] == seeds
        values = trial.user_attrs[VAL_REPEATS_ATTR]
        assert len(values) == 3
        assert trial.value == pytest.approx(np.mean(values))  # the objective is the mean
        assert trial.user_attrs["test_accuracy"] == pytest.approx(
            np.mean(trial.user_attrs[TEST_REPEATS_ATTR])
        )


def test_each_repeat_is_a_run_nested_under_its_trial(swept) -> None:
    _, _, _, study, _, runs = swept
    trials, repeats = _role(runs, "trial"), _role(runs, "repeat")
    assert len(trials) == 3 and len(repeats) == 9
    by_id = {run.info.run_id: run for run in trials}
    for trial in study.trials:
        (run,) = [r for r in trials if r.data.tags["optuna.trial"] == str(trial.number)]
        mine = [r for r in repeats if r.data.tags["mlflow.parentRunId"] == run.info.run_id]
        assert sorted(int(r.data.tags["seed"]) for r in mine) == sorted(repeat_seeds(5, 3))
        assert all(r.info.status == "FINISHED" for r in mine)
        # Each repeat's logged config is the trial's config with its own seed.
        for repeat in mine:
            assert repeat.data.params["seed"] == repeat.data.tags["seed"]
            assert repeat.data.params["lr"] == run.data.params["lr"]
        vals = [r.data.metrics["val_accuracy"] for r in mine]
        assert sorted(vals) == pytest.approx(sorted(trial.user_attrs[VAL_REPEATS_ATTR]))
    assert all(r.data.tags["mlflow.parentRunId"] in by_id for r in repeats)


def test_a_trial_run_carries_the_mean_and_its_interval(swept) -> None:
    _, _, _, study, client, runs = swept
    for run in _role(runs, "trial"):
        trial = study.trials[int(run.data.tags["optuna.trial"])]
        values = trial.user_attrs[VAL_REPEATS_ATTR]
        low, high = stats.t.interval(0.95, 2, loc=np.mean(values), scale=stats.sem(values))
        metrics = run.data.metrics
        assert metrics["val_accuracy"] == pytest.approx(np.mean(values))
        assert metrics["val_accuracy_std"] == pytest.approx(np.std(values, ddof=1))
        assert (metrics["val_accuracy_ci_low"], metrics["val_accuracy_ci_high"]) == pytest.approx(
            (low, high)
        )
        tests = trial.user_attrs[TEST_REPEATS_ATTR]
        assert metrics["test_accuracy"] == pytest.approx(np.mean(tests))
        assert "test_accuracy_ci_low" in metrics and "test_accuracy_ci_high" in metrics
        assert run.data.params["repeats"] == "3"
        assert re.search(r"\d\.\d{4} ± \d\.\d{4}$", run.info.run_name)
        files = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"curves.png", "repeats.json", "config.toml"} <= files
        # The per-epoch curve is the mean of the repeats' curves.
        history = client.get_metric_history(run.info.run_id, "train_loss")
        assert [m.step for m in history] == [1, 2]


def test_repeat_r_of_every_trial_sees_the_same_split(swept) -> None:
    _, _, _, _, _, runs = swept
    digests: dict[str, set[str]] = {}
    for run in _role(runs, "repeat"):
        digests.setdefault(run.data.tags["seed"], set()).add(run.data.tags["dataset.digest"])
    assert len(digests) == 3
    assert all(len(found) == 1 for found in digests.values())  # one split per seed
    assert len(set().union(*digests.values())) == 3  # and different splits across seeds


def test_the_sweep_prints_means_with_their_spread(swept) -> None:
    _, _, done, _, _, _ = swept
    assert re.search(r"trial-000 .*val acc \d\.\d{4} ± \d\.\d{4}", (done.stdout + done.stderr))
    assert re.search(r"best: trial \d val acc \d\.\d{4} ± ", (done.stdout + done.stderr))


def test_resuming_with_other_repeats_is_refused_before_any_work(swept, mnist_dir) -> None:
    work, args, _, _, _, _ = swept
    changed = [("2" if a == "3" and args[i - 1] == "--repeats" else a) for i, a in enumerate(args)]
    changed[changed.index("--trials") + 1] = "4"
    done = run_cli(changed, work, mnist_dir)
    assert done.returncode == 2
    assert "--repeats 2: study 'rep' was searched with --repeats 3" in (done.stdout + done.stderr)
    study = optuna.load_study(study_name="rep", storage=f"sqlite:///{work / 'optuna.db'}")
    assert len(study.trials) == 3


def test_best_tests_the_winner_against_close_runners_up(swept, mnist_dir) -> None:
    work, _, _, study, _, _ = swept
    storage = f"sqlite:///{work / 'optuna.db'}"
    done = run_cli(["best", "--study", "rep", "--storage", storage], work, mnist_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    best = study.best_trial
    assert f"best: trial {best.number} val_accuracy " in (done.stdout + done.stderr)
    assert "(95% CI " in (done.stdout + done.stderr) and "verdict: " in (done.stdout + done.stderr)
    for line in (done.stdout + done.stderr).splitlines():
        found = re.match(r"\s+vs trial (\d+) .* p = ([\d.]+) \(paired t", line)
        if found:
            other = study.trials[int(found[1])]
            expected = stats.ttest_rel(
                best.user_attrs[VAL_REPEATS_ATTR], other.user_attrs[VAL_REPEATS_ATTR]
            )
            assert float(found[2]) == pytest.approx(expected.pvalue, abs=6e-4)


def test_confirm_retrains_the_top_trials_on_fresh_seeds(swept, mnist_dir) -> None:
    work, _, _, _, client, _ = swept
    storage = f"sqlite:///{work / 'optuna.db'}"
    args = ["best", "--study", "rep", "--storage", storage, "--confirm", "2", "--top", "2"]
    done = run_cli([*args, "--output", str(work / "confirmed.toml")], work, mnist_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    experiment = client.get_experiment_by_name("rep")
    runs = client.search_runs([experiment.experiment_id], max_results=500)
    (parent,) = _role(runs, "confirm")
    confirmed = _role(runs, "confirmed")
    assert len(confirmed) == 2
    fresh = {
        int(r.data.tags["seed"])
        for r in _role(runs, "repeat")
        if r.data.tags["mlflow.parentRunId"] in {c.info.run_id for c in confirmed}
    }
    assert len(fresh) == 2 and not fresh & set(repeat_seeds(5, 3))  # never the search's seeds
    header = (work / "confirmed.toml").read_text().split("\n\n")[0]
    assert "confirmed best: trial" in header and "fresh seeds" in header
    winner = int(parent.data.tags["confirmed.trial"])
    assert f"trial {winner} of study rep" in (done.stdout + done.stderr)


def test_train_repeats_nests_each_seed_and_prints_the_interval(tmp_path, mnist_dir) -> None:
    done = run_cli(["train", "--repeats", "3", "--seed", "2", *TINY], tmp_path, mnist_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("mnist-mlp-train")
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = _role(runs, "train")
    repeats = _role(runs, "repeat")
    assert [
        int(r.data.tags["seed"]) for r in sorted(repeats, key=lambda r: r.data.tags["repeat"])
    ] == repeat_seeds(2, 3)
    tests = [r.data.metrics["test_accuracy"] for r in repeats]
    assert parent.data.metrics["test_accuracy"] == pytest.approx(np.mean(tests))
    assert f"test_accuracy: {np.mean(tests):.4f} ± " in (done.stdout + done.stderr)
    document = json.loads(
        Path(
            client.download_artifacts(parent.info.run_id, "repeats.json", str(tmp_path))
        ).read_text()
    )
    assert document["seeds"] == repeat_seeds(2, 3)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--repeats", "0"], "--repeats 0: expected 1 to 100"),
        (["sweep", "--repeats", "2", "--pruner", "wilcoxon"], "expected repeats >= 4"),
    ],
)
def test_bad_repeats_are_refused_before_any_run(tmp_path, mnist_dir, args, message) -> None:
    done = run_cli(args, tmp_path, mnist_dir)
    assert done.returncode == 2 and message in (done.stdout + done.stderr)
    assert not (tmp_path / "mlflow.db").exists()
