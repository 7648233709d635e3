"""Registry entries parse strictly; verdicts compare printed digits, not rounded floats."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from mnist_models.callbacks import EpochResult
from mnist_models.config import TrainConfig
from mnist_models.errors import ConfigError
from mnist_models.metrics import Evaluation
from mnist_models.training import TrainResult
from sweeps.reported.registry import (
    DIFFERS,
    EXACT,
    INSIDE,
    NOT_REPRODUCIBLE,
    OUTSIDE,
    WITHIN,
    ReportedRun,
    judge,
    printed_figures,
    spread,
)

ENTRY = {
    "id": "toy",
    "section": "Part 1 §9",
    "wording": "a toy run",
    "note": "made up",
    "tolerance": 0.002,
    "reported": {"test_accuracy": "0.7073", "test_error": "0.653"},
    "config": {"model": "mlp", "epochs": 2},
    "corrected": {"lr": 0.01},
}


def _result(train_loss: float, train_acc: float, test_loss: float, test_acc: float) -> TrainResult:
    epoch = EpochResult(2, train_loss, train_acc, 0.5, 0.9, 0.001, 1.0)
    empty = np.zeros(0)
    test = Evaluation(test_loss, test_acc, np.zeros((10, 10)), empty, empty, empty, empty)
    return TrainResult(TrainConfig(), None, [epoch], test, None, 1.0)  # type: ignore[arg-type]


def test_grokking_figures_truncate_errors_and_print_accuracies_in_full() -> None:
    figures = printed_figures(_result(0.10899, 1.0, 0.65399, 7073 / 10000), "grokking")
    assert figures == {
        "train_error": "0.108",  # truncated, not rounded to 0.109
        "train_accuracy": "1.0",
        "test_error": "0.653",
        "test_accuracy": "0.7073",
    }
    keras = printed_figures(_result(0.23524, 0.92456, 0.1, 0.5), "keras")
    assert (keras["loss"], keras["accuracy"], keras["val_accuracy"]) == (
        "0.2352",
        "0.9246",
        "0.9000",
    )


def test_verdicts() -> None:
    entry = ReportedRun.from_dict(ENTRY, "toy.toml")
    assert judge(entry, {"test_accuracy": "0.7073", "test_error": "0.653"}).label == EXACT
    near = judge(entry, {"test_accuracy": "0.7081", "test_error": "0.652"})
    assert near.label == WITHIN
    far = judge(entry, {"test_accuracy": "0.7201", "test_error": "0.653"})
    assert far.label == DIFFERS and far.detail == "test_accuracy 0.7073 vs 0.7201"
    fake = ReportedRun.from_dict({**ENTRY, "reproducible": False, "reason": "not a model"}, "t")
    shown = judge(fake, {"test_accuracy": "0.8812", "test_error": "0.2"})
    assert (shown.label, shown.reproduced["test_accuracy"]) == (NOT_REPRODUCIBLE, "0.8812")
    assert entry.corrected_config().lr == 0.01 and entry.config.lr != 0.01


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown field 'colour'"),
        ({"headline": "val_accuracy"}, "headline 'val_accuracy' is not among"),
        ({"format": "latex"}, "format 'latex'"),
        ({"config": {"model": "mlp", "lr": -1}}, "[config]"),
        ({"corrected": {"mlp.nope": 1}}, "[corrected]"),
    ],
)
def test_bad_entries_are_one_line_errors(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        ReportedRun.from_dict({**ENTRY, **change}, "toy.toml")
    text = str(caught.value)
    assert text.startswith("toy.toml") and message in text and "\n" not in text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reproducible": "false"}, "reproducible='false': expected true or false"),
        ({"reproducible": 0}, "reproducible=0: expected true or false"),
        ({"part": True}, "part=True: expected an integer >= 1"),
        ({"part": "2"}, "part='2': expected an integer >= 1"),
        ({"part": 2.0}, "part=2.0: expected an integer >= 1"),
        ({"part": 0}, "part=0: expected an integer >= 1"),
        ({"tolerance": "abc"}, "tolerance='abc': expected a finite number >= 0"),
        ({"tolerance": True}, "tolerance=True: expected a finite number >= 0"),
        ({"tolerance": -0.001}, "tolerance=-0.001: expected a finite number >= 0"),
        ({"tolerance": float("nan")}, "tolerance=nan: expected a finite number >= 0"),
        ({"tolerance": float("inf")}, "tolerance=inf: expected a finite number >= 0"),
        ({"tolerance": 10**400}, "tolerance=1000"),
        ({"id": 7}, "id=7: expected a string"),
        ({"section": None}, "section=None: expected a string"),
        ({"note": ["made up"]}, "note=['made up']: expected a string"),
        ({"headline": 1}, "headline=1: expected a string"),
        ({"format": False}, "format=False: expected a string"),
        ({"reason": 3.5}, "reason=3.5: expected a string"),
        ({"reported": "0.7073"}, "reported='0.7073': expected a table"),
        (
            {"reported": {"test_accuracy": 0.7073}},
            "reported.test_accuracy=0.7073: expected a string",
        ),
        ({"config": "mlp"}, "config='mlp': expected a table"),
        ({"corrected": ["lr"]}, "corrected=['lr']: expected a table"),
    ],
)
def test_each_field_has_its_type(change: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ReportedRun.from_dict({**ENTRY, **change}, "toy.toml")
    text = str(caught.value)
    assert text.startswith("toy.toml: ") and message in text and "\n" not in text


def test_typed_fields_keep_their_values() -> None:
    entry = ReportedRun.from_dict({**ENTRY, "part": 2, "tolerance": 0, "reproducible": False}, "t")
    assert (entry.part, entry.reproducible) == (2, False)
    assert entry.tolerance == 0.0 and isinstance(entry.tolerance, float)


def test_a_mistyped_field_in_a_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "toy.toml"
    path.write_text(
        'id = "toy"\nsection = "s"\nwording = "w"\nreproducible = "false"\n'
        '[reported]\ntest_accuracy = "0.1"\n[config]\nmodel = "mlp"\n'
    )
    with pytest.raises(ConfigError) as caught:
        ReportedRun.from_file(path)
    assert str(caught.value) == f"{path}: reproducible='false': expected true or false"


def test_the_file_name_is_the_id(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text(
        'id = "toy"\nsection = "s"\nwording = "w"\n[reported]\ntest_accuracy = "0.1"\n'
        '[config]\nmodel = "mlp"\n'
    )
    with pytest.raises(ConfigError, match="must equal the file name 'other'"):
        ReportedRun.from_file(path)


def test_reported_runs_are_logged_tabled_and_written(
    tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    from sweeps.cli import main
    from sweeps.reported import reproduce as module

    tiny = {
        "model": "mlp",
        "epochs": 2,
        "mlp": {"hidden_sizes": [16]},
        "data": {"dataset": "mnist", "train_size": 500, "val_fraction": 0.0, "test_size": 300},
    }
    wrong = ReportedRun.from_dict(
        {**ENTRY, "id": "wrong", "config": tiny, "reported": {"test_accuracy": "0.1234"}}, "w"
    )
    fake = ReportedRun.from_dict(
        {**ENTRY, "id": "fake", "config": tiny, "reproducible": False, "reason": "not a model"},
        "f",
    )
    monkeypatch.setattr(module, "select", lambda ids: [wrong, fake])
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    report = tmp_path / "reported.md"
    code = main(
        [
            "reproduce",
            "--reported",
            "all",
            "--corrected",
            "--report",
            str(report),
            "--tracking-uri",
            store,
            "--data-dir",
            str(mnist_dir),
        ]
    )
    assert code == 1, "a differing figure makes the command fail"
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("reported-runs").experiment_id])
    faithful = {r.data.tags["reported.id"]: r for r in runs if r.data.tags["mode"] == "faithful"}
    assert sorted(faithful) == ["fake", "wrong"]
    assert len(runs) == 4, "with --corrected every entry also runs corrected"
    assert faithful["wrong"].data.tags["verdict"] == "differs"
    assert faithful["fake"].data.tags["verdict"] == "not reproducible"
    real = faithful["fake"].data.tags["reproduced.value"]
    assert real == str(faithful["fake"].data.metrics["test_accuracy"]), "the real accuracy"
    text = report.read_text()
    assert "| `wrong` |" in text and "| differs |" in text
    assert "Verdict: differs: test_accuracy 0.1234 vs" in text
    assert "| not reproducible |" in text and "Verdict: not reproducible: not a model" in text
    assert real in text


def _scipy_interval(values: list[float]) -> tuple[float, float]:
    """Straight from scipy, not from mnist_models.stats: mean ± t(n-1) sd sqrt(1 + 1/n)."""
    n, mean, sd = len(values), float(np.mean(values)), float(np.std(values, ddof=1))
    half = float(scipy.stats.t.ppf(0.975, df=n - 1)) * sd * math.sqrt(1 + 1 / n)
    return mean - half, mean + half


def test_the_spread_is_the_prediction_interval_of_one_more_run() -> None:
    entry = ReportedRun.from_dict(ENTRY, "toy.toml")  # published test_accuracy 0.7073
    values = [0.7001, 0.7042, 0.6987]
    low, high = _scipy_interval(values)
    found = spread(entry, [1, 2, 3], [{"test_accuracy": str(v)} for v in values])
    assert found is not None and (found.seeds, found.values) == ((1, 2, 3), tuple(values))
    assert (found.low, found.high) == pytest.approx((low, high), abs=1e-12)
    assert found.mean == pytest.approx(np.mean(values)) and found.published == 0.7073
    assert found.sd == pytest.approx(np.std(values, ddof=1))
    assert found.label == (INSIDE if low <= 0.7073 <= high else OUTSIDE)
    tight = spread(entry, [1, 2, 3], [{"test_accuracy": v} for v in ("0.7", "0.7001", "0.7002")])
    assert tight is not None and tight.label == OUTSIDE and not tight.inside
    assert spread(entry, [1], [{"test_accuracy": "0.7073"}]) is None, "one run: no spread"
    assert spread(entry, [1, 2], [{"test_accuracy": "nan"}, {"test_accuracy": "0.7"}]) is None


def test_reported_repeats_nest_k_runs_under_one_and_judge_the_spread(
    tmp_path: Path,
    mnist_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A real Part 1 entry (legacy numpy RNG, dropout 0.5), shortened to a few passes."""
    from mlflow import MlflowClient

    from mnist_models.seeds import repeat_seeds
    from sweeps.cli import main
    from sweeps.reported import reproduce as module
    from sweeps.reported.formats import in_full, truncated
    from sweeps.reported.registry import registry

    real = registry()["minibatch-128-0.001"]
    entry = dataclasses.replace(
        real, config=real.config.replace({"epochs": 4, "data.test_size": 1000})
    )
    monkeypatch.setattr(module, "select", lambda ids: [entry])
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    report = tmp_path / "reported.md"
    argv = ["reproduce", "--reported", entry.id, "--repeats", "2", "--report", str(report)]
    code = main([*argv, "--tracking-uri", store, "--data-dir", str(mnist_dir)])
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("reported-runs")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    (parent,) = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    children = sorted(
        (run for run in runs if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id),
        key=lambda run: int(run.data.tags["repeat"]),
    )
    assert len(runs) == 3 and len(children) == 2
    tags = parent.data.tags
    assert (tags["mnist_sweeps.role"], tags["reported.id"], tags["mode"]) == (
        "reported",
        entry.id,
        "faithful",
    )
    assert tags["reported.value"] == "0.6435" and tags["reported.metric"] == "test_accuracy"
    assert parent.data.params["repeats"] == "2"
    seeds = [int(child.data.params["seed"]) for child in children]
    assert seeds == repeat_seeds(1, 2) and seeds[0] == 1, "the published seed first"
    # The verdict is the published seed's run's, its figures printed as the notebook did.
    first = children[0].data.metrics
    figures = {
        "train_error": truncated(first["train_loss"]),
        "train_accuracy": in_full(first["train_accuracy"]),
        "test_error": truncated(first["test_loss"]),
        "test_accuracy": in_full(first["test_accuracy"]),
    }
    verdict = judge(entry, figures)
    assert tags["verdict"] == verdict.label and tags["reproduced.value"] == in_full(
        first["test_accuracy"]
    )
    assert code == (1 if verdict.label == DIFFERS else 0)
    # The spread: the two runs' printed test accuracies against the published 0.6435.
    values = [float(in_full(child.data.metrics["test_accuracy"])) for child in children]
    low, high = _scipy_interval(values)
    assert float(tags["spread.low"]) == pytest.approx(low, abs=1e-9)
    assert float(tags["spread.high"]) == pytest.approx(high, abs=1e-9)
    assert float(tags["spread.mean"]) == pytest.approx(np.mean(values), abs=1e-12)
    expected = INSIDE if low <= 0.6435 <= high else OUTSIDE
    assert tags["spread.verdict"] == expected
    text = report.read_text()
    row = next(line for line in text.splitlines() if line.startswith(f"| `{entry.id}` |"))
    sd = float(np.std(values, ddof=1))
    assert f"| {np.mean(values):.4f} ± {sd:.4f} | {low:.4f} to {high:.4f} | {expected} |" in row
    assert f"reported 0.6435 is {expected}" in text and "(2 runs nested under it)" in text
    err = capsys.readouterr().err
    assert f"{entry.id}: test_accuracy over 2 seeds {np.mean(values):.4f} ± {sd:.4f}" in err
    assert f"{low:.4f}-{high:.4f}" in err and f"reported 0.6435 is {expected}" in err
