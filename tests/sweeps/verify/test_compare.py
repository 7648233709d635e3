"""``mnist-sweep compare``: variants on common seeds, paired differences, plain verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers.cli import run_cli
from mlflow import MlflowClient
from scipy import stats

from mnist_models.errors import ConfigError
from mnist_models.seeds import repeat_seeds
from sweeps.verify.compare import parse_vary

TINY = ["--train-size", "1200", "--epochs", "2", "--set", "data.test_size=1000"]
TINY += ["--set", "mlp.hidden_sizes=[32]", "--repeats", "3"]


def test_vary_flags_cross_into_variants_baseline_first() -> None:
    variants = parse_vary(["augment=false,true", "mlp.hidden_sizes=[64,32],[128]"])
    assert [v.overrides for v in variants] == [
        {"augment": False, "mlp.hidden_sizes": [64, 32]},
        {"augment": False, "mlp.hidden_sizes": [128]},
        {"augment": True, "mlp.hidden_sizes": [64, 32]},
        {"augment": True, "mlp.hidden_sizes": [128]},
    ]
    assert variants[1].label == "augment=false mlp.hidden_sizes=[128]"


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ([], "--vary: expected at least one KEY=V1,V2"),
        (["augment"], "--vary 'augment': expected KEY=V1,V2"),
        (["lr=0.1"], "expected at least two variants"),
        (["lr=0.1,0.2", "lr=0.3,0.4"], "--vary lr: given twice"),
        (["lr=0.1,"], "--vary 'lr=0.1,': expected"),
    ],
)
def test_malformed_vary_flags_are_refused(flags: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        parse_vary(flags)


def _compare(work: Path, mnist_dir: Path, vary: list[str], experiment: str):
    args = ["compare", *[f for v in vary for f in ("--vary", v)], *TINY]
    done = run_cli([*args, "--experiment", experiment], work, mnist_dir)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=200)
    (parent,) = [r for r in runs if r.data.tags["mnist_sweeps.role"] == "compare"]
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"compare.json", "compare.png"} <= names
    path = client.download_artifacts(parent.info.run_id, "compare.json", str(work))
    return output, runs, json.loads(Path(path).read_text())


def test_a_planted_difference_is_called_and_numbers_match_scipy(tmp_path, mnist_dir) -> None:
    output, runs, document = _compare(tmp_path, mnist_dir, ["lr=0.003,0.0001"], "planted")
    variants = [r for r in runs if r.data.tags["mnist_sweeps.role"] == "variant"]
    repeats = [r for r in runs if r.data.tags["mnist_sweeps.role"] == "repeat"]
    assert len(variants) == 2 and len(repeats) == 6
    for variant in variants:  # the same three seeds under each variant
        seeds = [
            int(r.data.tags["seed"])
            for r in repeats
            if r.data.tags["mlflow.parentRunId"] == variant.info.run_id
        ]
        assert sorted(seeds) == sorted(repeat_seeds(0, 3))
    base, slow = document["variants"]
    expected = stats.ttest_rel(slow["test_accuracy"], base["test_accuracy"])
    assert slow["p_value"] == pytest.approx(expected.pvalue)
    assert slow["difference"] == pytest.approx(
        np.mean(slow["test_accuracy"]) - np.mean(base["test_accuracy"])
    )
    assert slow["verdict"] == "worse" and slow["p_value"] < 0.05
    assert "lr=0.0001 vs lr=0.003: test_accuracy -" in output and "-> worse" in output


@pytest.mark.slow  # minutes on two cores: CI runs it in its `pytest -m slow` pass
def test_identical_configs_are_not_distinguishable(tmp_path, mnist_dir) -> None:
    # The same config twice on common seeds: bit for bit the same runs, a zero difference.
    _, _, same = _compare(tmp_path, mnist_dir, ["dropout=0.2,0.2"], "same")
    first, second = same["variants"]
    assert first["test_accuracy"] == second["test_accuracy"]
    assert second["difference"] == 0.0 and second["verdict"] == "not distinguishable"
    # The same config on other seeds: independent noise, which the test must not call.
    _, _, noise = _compare(tmp_path, mnist_dir, ["seed=0,1"], "noise")
    assert noise["variants"][1]["verdict"] == "not distinguishable"
    assert noise["variants"][0]["test_accuracy"] != noise["variants"][1]["test_accuracy"]
