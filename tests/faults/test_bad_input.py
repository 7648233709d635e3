"""Issue 7, bad input: every bad config file, flag or id is refused before any work.

Each case runs ``mnist-sweep`` in-process in a folder of its own, with the Optuna and MLflow
stores pointed into that folder, and checks the contract of bad input: exit code 2, ONE line
on stderr (``mnist-sweep: error: ...``) naming the file (or flag), the key and what was
expected, and nothing written: no ``optuna.db``, no ``mlflow.db``, no ``mlruns``, the folder
byte for byte as it was. A tripwire on MNIST loading turns "the bad input got as far as
training" into an immediate failure instead of a training run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import math
import sys
import tempfile
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
import tomli_w
from helpers.files import GOOD_SWEEP_TOML
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from mlflow import MlflowClient
from optuna.trial import TrialState, create_trial

from mnist_models.config import DataConfig, MLPConfig, TrainConfig, config_keys
from sweeps.cli import main
from sweeps.spec.sweep_file import SECTIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

pytestmark = [pytest.mark.fault, pytest.mark.bad_input]

STORES = ("optuna.db", "mlflow.db", "mlruns")
PREFIX = "mnist-sweep: error: "

# Few examples each, no example database (it would write .hypothesis/ into the case folder).
FEW = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)


# -- running one case ------------------------------------------------------------------------


class ReachedWork(Exception):
    """Raised by the tripwire: bad input got as far as loading MNIST."""


@pytest.fixture(autouse=True)
def tripwire(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ReachedWork("bad input was not refused: the command went on to load MNIST")

    monkeypatch.setattr("mnist_models.training.load_mnist", refuse)
    monkeypatch.setattr("mnist_models.data.cache.load_mnist", refuse)


@dataclass(frozen=True)
class Outcome:
    code: int | str | None
    err: str

    @property
    def line(self) -> str:
        """The one error line (checked to be the only line on stderr)."""
        lines = self.err.splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got:\n{self.err}"
        return lines[0]


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    return {
        str(path.relative_to(folder)): path.read_bytes() if path.is_file() else None
        for path in sorted(folder.rglob("*"))
    }


def store_args(command: str, folder: Path) -> list[str]:
    """Points every store the command takes into ``folder``."""
    args = []
    if command == "sweep":
        args += ["--storage", f"sqlite:///{folder / 'optuna.db'}"]
    if command in ("sweep", "train", "reproduce"):
        args += ["--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}"]
    return args


def run_bad(folder: Path, argv: list[str], stores: bool = True) -> Outcome:
    """Runs ``mnist-sweep ARGV`` in ``folder``; asserts the folder is left exactly as it was."""
    before = _snapshot(folder)
    args = [*argv, *store_args(argv[0], folder)] if stores else argv
    err = io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        contextlib.redirect_stderr(err),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        patch.chdir(folder)
        try:
            code: int | str | None = main(args)
        except SystemExit as exc:  # argparse's own errors
            code = exc.code
    for store in STORES:
        assert not (folder / store).exists(), f"{store} written on bad input {argv}"
    assert _snapshot(folder) == before, f"the folder changed on bad input {argv}"
    return Outcome(code, err.getvalue().strip())


def assert_refused(outcome: Outcome, *parts: str) -> str:
    """Exit 2, one ``mnist-sweep: error:`` line holding every part; returns the line."""
    assert outcome.code == 2, outcome
    line = outcome.line
    assert line.startswith(PREFIX), line
    for part in parts:
        assert part in line, f"{part!r} not in {line!r}"
    return line


def run_config(folder: Path, command: str, content: str | bytes, *extra: str) -> Outcome:
    """``mnist-sweep COMMAND --config FILE``, FILE holding ``content``."""
    path = folder / f"{command}.toml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return run_bad(folder, [command, "--config", str(path), *extra])


@contextlib.contextmanager
def fresh_folder(factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A new empty folder per Hypothesis example (function fixtures are not reset between)."""
    with tempfile.TemporaryDirectory(dir=factory.getbasetemp(), prefix="bad-") as name:
        yield Path(name)


def toml(document: dict[str, Any]) -> str:
    return tomli_w.dumps(document)


def nest(key: str, value: Any) -> dict[str, Any]:
    """``nest("mlp.dtype", 1) == {"mlp": {"dtype": 1}}``."""
    head, _, rest = key.partition(".")
    return {head: nest(rest, value) if rest else value}


def as_document(command: str, fixed: dict[str, Any]) -> dict[str, Any]:
    """A training config as the file ``command --config`` reads: plain, or a sweep's [fixed]."""
    return fixed if command == "train" else {"sweep": {"trials": 2}, "fixed": fixed}


# -- training config files: mnist-sweep train --config FILE ----------------------------------

TRAIN_FILES = {
    "malformed": ("lr = \n", ["malformed TOML (", "line 1"]),
    "unknown-key": ("epoch = 2\n", ["unknown key 'epoch'", "expected one of ['augment'"]),
    "unknown-nested-key": ("[mlp]\nwidth = 3\n", ["unknown key 'mlp.width'", "'hidden_sizes'"]),
    "lr-not-a-number": ('lr = "fast"\n', ["lr='fast': expected a number"]),
    "batch-size-not-an-integer": ("batch_size = 64.0\n", ["batch_size=64.0: expected an integer"]),
    "augment-not-a-bool": (
        'augment = "yes"\n',
        ["augment='yes': expected true, false, 'none', 'affine'"],
    ),
    "lr-zero": ("lr = 0\n", ["lr=0.0: expected > 0"]),
    "lr-negative": ("lr = -1\n", ["lr=-1.0: expected > 0"]),
    "lr-infinite": ("lr = inf\n", ["lr=inf: expected a finite number"]),
    "lr-beyond-float": ("lr = " + "9" * 400 + "\n", ["lr=999", "expected a finite number"]),
    "batch-size-zero": ("batch_size = 0\n", ["batch_size=0: expected >= 1"]),
    "batch-size-negative": ("batch_size = -64\n", ["batch_size=-64: expected >= 1"]),
    "dropout-one": ("dropout = 1.0\n", ["dropout=1.0: expected a rate in [0, 1)"]),
    "dropout-negative": ("dropout = -0.1\n", ["dropout=-0.1: expected a rate in [0, 1)"]),
    "hidden-sizes-empty": (
        "[mlp]\nhidden_sizes = []\n",
        ["mlp.hidden_sizes=(): expected a non-empty list of positive widths"],
    ),
    "section-not-a-table": ("mlp = 3\n", ["mlp: expected a table, got 3"]),
    "unknown-model": ('model = "resnet"\n', ["model='resnet': expected one of ('mlp', 'cnn')"]),
    "val-fraction-one": ("[data]\nval_fraction = 1.0\n", ["data.val_fraction=1.0: expected"]),
    "integer-too-long": ("seed = " + "9" * 5000 + "\n", ["malformed TOML (", "digits"]),
    "newline-in-key": ('"a\\nb" = 1\n', ["unknown key 'a\\nb'"]),  # escaped: still one line
    "emoji-code-in-key": ('":thumbs_up:" = 1\n', ["unknown key ':thumbs_up:'"]),  # not 👍
}


@pytest.mark.parametrize(("content", "parts"), TRAIN_FILES.values(), ids=TRAIN_FILES.keys())
def test_a_bad_training_config_is_refused_naming_file_and_key(
    content: str, parts: list[str], tmp_path: Path
) -> None:
    line = assert_refused(run_config(tmp_path, "train", content), *parts)
    assert f"{tmp_path / 'train.toml'}: " in line


@pytest.mark.parametrize(
    ("content", "parts"),
    [
        ("lr = 0.1\n".encode("utf-16"), ["malformed TOML (", "can't decode byte 0xff"]),
        (b"\xef\xbb\xbflr = 0.1\n", ["malformed TOML (", "line 1, column 1"]),  # UTF-8 with BOM
    ],
    ids=["utf-16", "utf-8-bom"],
)
def test_a_config_that_is_not_plain_utf8_is_refused(
    content: bytes, parts: list[str], tmp_path: Path
) -> None:
    assert_refused(run_config(tmp_path, "train", content), f"{tmp_path / 'train.toml'}: ", *parts)


def test_a_missing_config_and_a_folder_as_config_are_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    outcome = run_bad(tmp_path, ["train", "--config", str(missing)])
    assert_refused(outcome, f"{missing}: file not found")
    (tmp_path / "folder.toml").mkdir()
    outcome = run_bad(tmp_path, ["sweep", "--config", str(tmp_path / "folder.toml")])
    assert_refused(outcome, f"{tmp_path / 'folder.toml'}: cannot read (Is a directory)")


# -- sweep files: mnist-sweep sweep --config FILE --------------------------------------------

GOOD = GOOD_SWEEP_TOML


def _space(name: str, body: str) -> str:
    return f'{GOOD}[space."{name}"]\n{body}\n'


SWEEP_FILES = {
    "malformed": ("[sweep\n", ["malformed TOML ("]),
    "unknown-section": (GOOD + "[extra]\nx = 1\n", ["unknown section 'extra'", "'fixed'"]),
    "unknown-sweep-key": (GOOD.replace("trials", "trails"), ["unknown key 'sweep.trails'"]),
    "trials-not-an-int": (GOOD.replace("3", "'3'"), ["sweep.trials='3': expected int"]),
    "trials-zero": (GOOD.replace("= 3", "= 0"), ["sweep.trials=0: expected >= 1"]),
    "unknown-sampler": (
        GOOD.replace("trials = 3", "trials = 3\nsampler = 'bayes'"),
        ["sweep.sampler='bayes': expected one of ('tpe', 'random', 'qmc', 'cmaes', 'grid')"],
    ),
    "unknown-pruner": (
        GOOD.replace("trials = 3", "trials = 3\npruner = 'often'"),
        ["sweep.pruner='often': expected one of ('none', 'median', 'hyperband', 'wilcoxon')"],
    ),
    "repeats-zero": (
        GOOD.replace("trials = 3", "trials = 3\nrepeats = 0"),
        ["sweep.repeats=0: expected 1 to 100"],
    ),
    "repeats-not-an-int": (
        GOOD.replace("trials = 3", "trials = 3\nrepeats = 2.5"),
        ["sweep.repeats=2.5: expected int"],
    ),
    "wilcoxon-with-few-repeats": (
        GOOD.replace("trials = 3", "trials = 3\npruner = 'wilcoxon'\nrepeats = 3"),
        ["sweep.pruner='wilcoxon' with sweep.repeats=3: expected repeats >= 4"],
    ),
    "unknown-fixed-key": (GOOD.replace("epochs", "epoch"), ["fixed: unknown key 'epoch'"]),
    "fixed-lr-negative": (
        GOOD.replace("epochs = 2", "lr = -1"),
        ["fixed: lr=-1.0: expected > 0"],
    ),
    "fixed-batch-size-zero": (
        GOOD.replace("epochs = 2", "batch_size = 0"),
        ["fixed: batch_size=0: expected >= 1"],
    ),
    "fixed-dropout-above-one": (
        GOOD.replace("epochs = 2", "dropout = 1.5"),
        ["fixed: dropout=1.5: expected a rate in [0, 1)"],
    ),
    "no-validation-images": (
        GOOD.replace("epochs = 2", "data.val_fraction = 0.0"),
        ["fixed.data.val_fraction=0.0: expected > 0 (a sweep maximises val_accuracy)"],
    ),
    "empty-categorical": (
        _space("batch_size", "type = 'categorical'\nchoices = []"),
        ["space.batch_size: choices must not be empty"],
    ),
    "float-range-low-above-high": (
        GOOD.replace("0.005", "0.0001"),
        ["space.lr: low=0.001 must be <= high=0.0001"],
    ),
    "int-range-low-above-high": (
        _space("batch_size", "type = 'int'\nlow = 128\nhigh = 64"),
        ["space.batch_size: low=128 must be <= high=64"],
    ),
    "parameter-the-model-lacks": (
        _space("mlp.width", "type = 'int'\nlow = 1\nhigh = 3"),
        ["space.mlp.width: the model has no parameter 'mlp.width'", "(searchable: augment,"],
    ),
    "unknown-spec-key": (
        GOOD + "step = 0.001\n",
        ["space.lr: unknown key 'step' for type 'float' (expected ['grid', 'high', 'log', 'low'])"],
    ),
    "grid-sampler-without-grid-values": (
        GOOD.replace("trials = 3", "trials = 3\nsampler = 'grid'"),
        ["space.lr: sampler 'grid' needs the values to try, e.g. grid = [0.001, 0.005]"],
    ),
    "grid-value-out-of-range": (
        GOOD + "grid = [0.001, 0.01]\n",
        ["space.lr.grid: 0.01 is outside [0.001, 0.005]"],
    ),
    "grid-smaller-than-trials": (
        GOOD.replace("trials = 3", "trials = 3\nsampler = 'grid'") + "grid = [0.001, 0.005]\n",
        ["sweep.trials=3: the grid has 2 points; set trials = 2 or fewer"],
    ),
    "unknown-spec-type": (
        GOOD.replace('"float"', '"normal"'),
        ["space.lr.type='normal': expected one of ['categorical', 'float', 'int']"],
    ),
    "missing-high": (
        GOOD.replace("high = 0.005\n", ""),
        ["space.lr: missing ['high'] for type 'float'"],
    ),
    "spec-not-a-table": (
        GOOD.split("[space.lr]")[0] + "[space]\nlr = 0.003\n",
        ["space.lr: expected a table like"],
    ),
    "spec-bound-not-a-number": (
        GOOD.replace("low = 0.001", "low = '0.001'"),
        ["space.lr.low='0.001': expected int or float"],
    ),
    "spec-log-not-a-bool": (
        GOOD.replace("log = true", "log = 'yes'"),
        ["space.lr.log='yes': expected bool"],
    ),
    "log-range-from-zero": (
        GOOD.replace("low = 0.001", "low = 0.0"),
        ["space.lr: low=0.0 must be > 0 when log = true"],
    ),
    "choice-out-of-range": (
        _space("batch_size", "type = 'categorical'\nchoices = [64, 0]"),
        ["space.batch_size: batch_size=0: expected >= 1"],
    ),
    "choice-of-wrong-type": (
        _space("augment", "type = 'categorical'\nchoices = ['yes']"),
        ["space.augment: augment='yes': expected true, false, 'none', 'affine'"],
    ),
    "choice-not-a-scalar": (
        _space("mlp.hidden_sizes", "type = 'categorical'\nchoices = [[256]]"),
        ["space.mlp.hidden_sizes: choice [256] must be a bool, number or string"],
    ),
    "range-reaching-dropout-one": (
        _space("dropout", "type = 'float'\nlow = 0.0\nhigh = 1.0"),
        ["space.dropout: dropout=1.0: expected a rate in [0, 1)"],
    ),
    "range-to-infinity": (
        GOOD.replace("0.005", "inf").replace("log = true", "log = false"),
        ["space.lr: lr=inf: expected a finite number"],
    ),
    "float-range-over-an-integer-key": (
        _space("epochs", "type = 'float'\nlow = 1\nhigh = 3"),
        ["space.epochs: epochs=1.0: expected an integer"],
    ),
    "sweep-not-a-table": ("sweep = 3\n", ["sweep: expected a table, got 3"]),
    "space-not-a-table": ("space = 3\n", ["space: expected a table, got 3"]),
    "fixed-not-a-table": ("fixed = 3\n", ["fixed: expected a table, got 3"]),
}


@pytest.mark.parametrize(("content", "parts"), SWEEP_FILES.values(), ids=SWEEP_FILES.keys())
def test_a_bad_sweep_file_is_refused_naming_file_and_key(
    content: str, parts: list[str], tmp_path: Path
) -> None:
    assert_refused(run_config(tmp_path, "sweep", content), f"{tmp_path / 'sweep.toml'}: ", *parts)


# -- command-line flags ----------------------------------------------------------------------

FLAGS = {
    "epochs-and-set-epochs": (
        ["train", "--epochs", "2", "--set", "epochs=3"],
        "--epochs conflicts with --set epochs=...",
    ),
    "seed-and-set-seed": (["sweep", "--seed", "1", "--set", "seed=2"], "--seed conflicts with"),
    "train-size-and-set": (
        ["train", "--train-size", "100", "--set", "data.train_size=200"],
        "--train-size conflicts with --set data.train_size=...",
    ),
    "dataset-and-set": (
        ["sweep", "--dataset", "mnist", "--set", "data.dataset=sample"],
        "--dataset conflicts with --set data.dataset=...",
    ),
    "model-and-set-model": (
        ["train", "--model", "mlp", "--set", "model=cnn"],
        "--model conflicts with --set model=...",
    ),
    "set-unknown-key": (["train", "--set", "mlp.width=3"], "command line: unknown key 'mlp.width'"),
    "set-without-value": (["train", "--set", "lr"], "--set 'lr': expected KEY=VALUE"),
    "set-into-a-value": (["train", "--set", "lr.x=1"], "command line: 'lr' is not a section"),
    "set-into-an-unset-value": (
        ["sweep", "--set", "data.train_size.x=1"],
        "command line: 'data.train_size' is not a section",
    ),
    "set-wrong-type": (
        ["train", "--set", "batch_size=abc"],
        "command line: batch_size='abc': expected an integer",
    ),
    "set-lr-infinite": (["sweep", "--set", "lr=inf"], "lr=inf: expected a finite number"),
    "negative-seed": (["train", "--seed", "-1"], "command line: seed=-1: expected >= 0"),
    "trials-zero": (["sweep", "--trials", "0"], "--trials 0: expected >= 1"),
    "timeout-zero": (["sweep", "--timeout", "0"], "--timeout 0.0: expected > 0 seconds"),
    "timeout-nan": (["sweep", "--timeout", "nan"], "--timeout nan: expected > 0 seconds"),
    "workers-zero": (["sweep", "--workers", "0"], "--workers 0: expected >= 1"),
}


@pytest.mark.parametrize(("argv", "part"), FLAGS.values(), ids=FLAGS.keys())
def test_bad_or_conflicting_flags_are_refused(argv: list[str], part: str, tmp_path: Path) -> None:
    assert_refused(run_bad(tmp_path, argv), part)


@pytest.mark.parametrize(
    ("argv", "part"),
    [
        (["train", "--model", "resnet"], "argument --model: invalid choice: 'resnet'"),
        (["sweep", "--model", "resnet"], "argument --model: invalid choice: 'resnet'"),
        (["sweep", "--pruner", "often"], "argument --pruner: invalid choice: 'often'"),
        (["train", "--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
    ],
    ids=["train-unknown-model", "sweep-unknown-model", "unknown-pruner", "epochs-not-an-int"],
)
def test_flags_argparse_refuses(argv: list[str], part: str, tmp_path: Path) -> None:
    outcome = run_bad(tmp_path, argv)
    assert outcome.code == 2
    last = outcome.err.splitlines()[-1]
    assert last.startswith(f"mnist-sweep {argv[0]}: error: "), outcome.err
    assert part in last
    assert "Traceback" not in outcome.err


@pytest.mark.parametrize(
    ("command", "model", "config", "part"),
    [
        ("train", "mlp", 'model = "cnn"\n', "--model mlp conflicts with model = 'cnn' in "),
        ("sweep", "cnn", GOOD, "--model cnn conflicts with model = 'mlp' in "),
    ],
    ids=["train", "sweep"],
)
def test_a_config_whose_model_conflicts_with_model_is_refused(
    command: str, model: str, config: str, part: str, tmp_path: Path
) -> None:
    outcome = run_config(tmp_path, command, config, "--model", model)
    assert_refused(outcome, part + str(tmp_path / f"{command}.toml"))


# -- reproduce and best: ids and studies that do not exist -----------------------------------


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An MLflow store with one finished run, and an Optuna storage of studies with no best."""
    folder = tmp_path_factory.mktemp("stores")
    tracking = f"sqlite:///{folder / 'mlflow.db'}"
    client = MlflowClient(tracking)
    run = client.create_run(client.create_experiment("existing"))
    client.set_terminated(run.info.run_id)
    storage = f"sqlite:///{folder / 'optuna.db'}"
    optuna.create_study(study_name="empty", storage=storage)
    for state in (TrialState.FAIL, TrialState.PRUNED, TrialState.RUNNING):
        study = optuna.create_study(study_name=state.name.lower(), storage=storage)
        study.add_trial(create_trial(state=state))
    mixed = optuna.create_study(study_name="mixed", storage=storage)
    for state in (TrialState.FAIL, TrialState.FAIL, TrialState.PRUNED):
        mixed.add_trial(create_trial(state=state))
    return {"tracking": tracking, "storage": storage}


def _all_runs(tracking: str) -> list[str]:
    client = MlflowClient(tracking)
    ids = [e.experiment_id for e in client.search_experiments()]
    return sorted(r.info.run_id for r in client.search_runs(ids))


@pytest.mark.parametrize("run_id", ["0123abcd", "f" * 32], ids=["short", "full-length"])
def test_reproduce_an_unknown_run_id(run_id: str, stores: dict[str, str], tmp_path: Path) -> None:
    before = _all_runs(stores["tracking"])
    outcome = run_bad(
        tmp_path, ["reproduce", run_id, "--tracking-uri", stores["tracking"]], stores=False
    )
    assert_refused(outcome, f"RUN_ID {run_id!r}: no such run in {stores['tracking']}")
    assert _all_runs(stores["tracking"]) == before


REPRODUCE = {
    "unknown-reported-id": (
        ["reproduce", "--reported", "nope"],
        ["--reported 'nope': no such entry (known: ", "baseline"],
    ),
    "one-unknown-in-a-list": (
        ["reproduce", "--reported", "baseline,nope"],
        ["--reported 'nope': no such entry"],
    ),
    "run-id-and-reported": (
        ["reproduce", "0123abcd", "--reported", "baseline"],
        ["give either RUN_ID or --reported ID, not both"],
    ),
    "neither-run-id-nor-reported": (
        ["reproduce"],
        ["RUN_ID: expected an MLflow run id (or --reported ID|all)"],
    ),
    "corrected-without-reported": (
        ["reproduce", "0123abcd", "--corrected"],
        ["--corrected and --report go with --reported"],
    ),
    "no-tracking-store": (["reproduce", "0123abcd"], ["--tracking-uri 'sqlite:///", "no MLflow"]),
}


@pytest.mark.parametrize(("argv", "parts"), REPRODUCE.values(), ids=REPRODUCE.keys())
def test_reproduce_refuses_bad_ids_and_flags(
    argv: list[str], parts: list[str], tmp_path: Path
) -> None:
    assert_refused(run_bad(tmp_path, argv), *parts)


@pytest.mark.parametrize(
    ("study", "states"),
    [
        ("fail", "1 fail"),
        ("pruned", "1 pruned"),
        ("running", "1 running"),
        ("empty", "no trials"),
        ("mixed", "1 pruned, 2 fail"),
    ],
)
def test_best_of_a_study_without_a_finished_trial(
    study: str, states: str, stores: dict[str, str], tmp_path: Path
) -> None:
    argv = ["best", "--study", study, "--storage", stores["storage"]]
    outcome = run_bad(tmp_path, argv, stores=False)  # the default --output best.toml: not written
    assert_refused(outcome, f"--study {study!r}: no completed trial yet ({states})")


def test_best_of_an_unknown_study_lists_the_known_ones(
    stores: dict[str, str], tmp_path: Path
) -> None:
    argv = ["best", "--study", "nope", "--storage", stores["storage"]]
    outcome = run_bad(tmp_path, argv, stores=False)
    assert_refused(outcome, "--study 'nope': no such study in", "(studies: empty, fail, mixed")


# -- properties (Hypothesis) -----------------------------------------------------------------

COMMANDS = st.sampled_from(["train", "sweep", "--set"])


def _channel(folder: Path, channel: str, key: str, value: Any) -> tuple[Outcome, str]:
    """Feeds ``key = value`` through a plain config file, a sweep's [fixed] or ``--set``.

    Returns the outcome and how the error line should name where the value came from.
    """
    if channel == "--set":
        text = toml({"v": value}).removeprefix("v = ").strip()
        return run_bad(folder, ["train", "--set", f"{key}={text}"]), "command line: "
    outcome = run_config(folder, channel, toml(as_document(channel, nest(key, value))))
    return outcome, f"{folder / f'{channel}.toml'}: fixed: "  # a plain file is all [fixed]


def _number_part(key: str, value: float, expected: str) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{key}={value!r}: expected a finite number"
    return f"{key}={float(value)!r}: {expected}"


@FEW
@given(
    channel=COMMANDS,
    lr=st.one_of(
        st.floats(max_value=0.0),
        st.integers(min_value=-(2**63), max_value=0),
        st.sampled_from([math.inf, math.nan]),
    ),
)
def test_property_lr_must_be_a_finite_number_above_zero(
    channel: str, lr: float, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with fresh_folder(tmp_path_factory) as folder:
        outcome, where = _channel(folder, channel, "lr", lr)
        assert_refused(outcome, where + _number_part("lr", lr, "expected > 0"))


@FEW
@given(channel=COMMANDS, batch_size=st.integers(min_value=-(2**63), max_value=0))
def test_property_batch_size_must_be_at_least_one(
    channel: str, batch_size: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with fresh_folder(tmp_path_factory) as folder:
        outcome, where = _channel(folder, channel, "batch_size", batch_size)
        assert_refused(outcome, f"{where}batch_size={batch_size}: expected >= 1")


@FEW
@given(
    channel=COMMANDS,
    dropout=st.one_of(
        st.floats(max_value=-math.ulp(0.0)),  # below zero: -0.0 is a fine rate
        st.floats(min_value=1.0),
        st.just(math.nan),
    ),
)
def test_property_dropout_must_be_a_rate_in_0_1(
    channel: str, dropout: float, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with fresh_folder(tmp_path_factory) as folder:
        outcome, where = _channel(folder, channel, "dropout", dropout)
        expected = "expected a rate in [0, 1)"
        assert_refused(outcome, where + _number_part("dropout", dropout, expected))


def _key_kinds() -> dict[str, str]:
    """Every dotted config key with the kind of value it takes: bool, int, float, str, list."""
    kinds: dict[str, str] = {}

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            kind = hints[field.name]
            if isinstance(kind, type) and dataclasses.is_dataclass(kind):
                walk(kind, f"{prefix}{field.name}.")
            elif typing.get_origin(kind) is tuple:
                kinds[prefix + field.name] = "list"
            elif field.name in getattr(cls, "_BOOLEAN_CHOICES", {}):  # augment: also a bool
                kinds[prefix + field.name] = "choice-or-bool"
            elif typing.get_origin(kind) is typing.Literal:  # a choice list (of strings)
                kinds[prefix + field.name] = type(typing.get_args(kind)[0]).__name__
            else:
                (inner,) = [a for a in typing.get_args(kind) or (kind,) if a is not type(None)]
                kinds[prefix + field.name] = inner.__name__

    walk(TrainConfig, "")
    assert set(config_keys()) <= set(kinds)
    return kinds


KEY_KINDS = _key_kinds()
_TEXT = st.text(max_size=8)
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
WRONG_VALUES = {  # values of a kind the key never takes (an int is a fine float)
    "bool": st.one_of(st.integers(), _FLOATS, _TEXT),
    "int": st.one_of(_FLOATS, st.booleans(), _TEXT),
    "float": st.one_of(st.booleans(), _TEXT, st.lists(st.integers(), max_size=2)),
    "str": st.one_of(st.integers(), _FLOATS, st.booleans()),
    "list": st.one_of(st.integers(), _TEXT, st.booleans()),
    "choice-or-bool": st.one_of(st.integers(), _FLOATS, st.lists(st.integers(), max_size=2)),
}
EXPECTED = {
    "bool": "expected true or false",
    "int": "expected an integer",
    "float": "expected a number",
    "str": "expected a string",
    "list": "expected a list of",
    "choice-or-bool": "expected true, false, 'none', 'affine'",
}


@st.composite
def wrongly_typed(draw: st.DrawFn) -> tuple[str, Any]:
    key = draw(st.sampled_from(sorted(KEY_KINDS)))
    return key, draw(WRONG_VALUES[KEY_KINDS[key]])


@settings(FEW, max_examples=40)
@given(channel=st.sampled_from(["train", "sweep"]), case=wrongly_typed())
def test_property_a_wrongly_typed_value_of_any_key_is_refused(
    channel: str, case: tuple[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> None:
    key, value = case
    with fresh_folder(tmp_path_factory) as folder:
        outcome, where = _channel(folder, channel, key, value)
        assert_refused(outcome, f"{where}{key}={value!r}: {EXPECTED[KEY_KINDS[key]]}")


# Key names a user might type: letters, digits, '_', '-' and '.', in any script. Keys with
# quotes or control characters are the explicit cases above (their messages escape them).
NAMES = st.text(
    alphabet=st.characters(categories=("L", "N"), include_characters="_-."),
    min_size=1,
    max_size=12,
)
TOP_KEYS = {f.name for f in dataclasses.fields(TrainConfig)}
SPACE_KEYS = set(config_keys())  # keys whose default is None included


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


# Where an unknown key goes: (command, the table it lands in, the keys known there, the
# message's name for it, given the key).
UNKNOWN_KEY_PLACES = {
    # (a plain file with a [sweep], [fixed] or [space] table is a sweep file)
    "train config": ("train", (), _fields(TrainConfig) | SECTIONS, "unknown key '{}'"),
    "train config [mlp]": ("train", ("mlp",), _fields(MLPConfig), "unknown key 'mlp.{}'"),
    "sweep [fixed]": ("sweep", ("fixed",), _fields(TrainConfig), "fixed: unknown key '{}'"),
    "sweep [fixed.data]": (
        "sweep",
        ("fixed", "data"),
        _fields(DataConfig),
        "fixed: unknown key 'data.{}'",
    ),
    "sweep [sweep]": ("sweep", ("sweep",), {"trials", "sampler", "pruner"}, "'sweep.{}'"),
    "sweep [space.lr]": (
        "sweep",
        ("space", "lr"),
        {"type", "low", "high", "log"},
        "space.lr: unknown key '{}' for type 'float'",
    ),
}


@FEW
@given(place=st.sampled_from(sorted(UNKNOWN_KEY_PLACES)), name=NAMES)
def test_property_an_unknown_key_is_refused_by_name(
    place: str, name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    command, path, known, message = UNKNOWN_KEY_PLACES[place]
    assume(name not in known)
    document: dict[str, Any] = tomllib.loads(GOOD) if command == "sweep" else {}
    table = document
    for part in path:
        table = table.setdefault(part, {})
    table[name] = 1
    with fresh_folder(tmp_path_factory) as folder:
        outcome = run_config(folder, command, toml(document))
        assert_refused(outcome, f"{folder / (command + '.toml')}: ", message.format(name))


@FEW
@given(name=NAMES.filter(lambda n: n not in SPACE_KEYS))
def test_property_a_search_space_naming_a_missing_parameter_is_refused(
    name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    document = tomllib.loads(GOOD)
    document["space"][name] = {"type": "int", "low": 1, "high": 3}
    with fresh_folder(tmp_path_factory) as folder:
        outcome = run_config(folder, "sweep", toml(document))
        assert_refused(outcome, f"space.{name}: the model has no parameter {name!r}")


@FEW
@given(name=NAMES.filter(lambda n: n.split(".")[0] not in TOP_KEYS))
def test_property_set_of_an_unknown_key_is_refused(
    name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with fresh_folder(tmp_path_factory) as folder:
        # One token: argparse would read a key starting with '-' as an option of its own.
        outcome = run_bad(folder, ["sweep", f"--set={name}=1"])
        assert_refused(outcome, f"command line: unknown key {name!r} (expected one of")


RANGES = {  # searched key -> (spec type, strategy of a bound)
    "lr": ("float", st.floats(min_value=1e-6, max_value=1.0)),
    "dropout": ("float", st.floats(min_value=0.0, max_value=0.9)),
    "batch_size": ("int", st.integers(min_value=1, max_value=4096)),
    "epochs": ("int", st.integers(min_value=1, max_value=100)),
}


@st.composite
def inverted_range(draw: st.DrawFn) -> tuple[str, str, Any, Any]:
    name = draw(st.sampled_from(sorted(RANGES)))
    kind, bound = RANGES[name]
    first, second = draw(bound), draw(bound)
    assume(first != second)
    high, low = sorted((first, second))  # the larger bound as low
    return name, kind, low, high


@FEW
@given(case=inverted_range(), log=st.booleans())
def test_property_a_search_range_with_low_above_high_is_refused(
    case: tuple[str, str, Any, Any], log: bool, tmp_path_factory: pytest.TempPathFactory
) -> None:
    name, kind, low, high = case
    document = tomllib.loads(GOOD)
    document["space"][name] = {"type": kind, "low": low, "high": high, "log": log}
    with fresh_folder(tmp_path_factory) as folder:
        outcome = run_config(folder, "sweep", toml(document))
        assert_refused(outcome, f"space.{name}: low={low} must be <= high={high}")


def _is_toml(content: str | bytes) -> bool:
    try:
        tomllib.loads(content.decode() if isinstance(content, bytes) else content)
    except ValueError:  # TOMLDecodeError or UnicodeDecodeError
        return False
    return True


@FEW
@given(
    command=st.sampled_from(["train", "sweep"]),
    content=st.one_of(st.text(max_size=40), st.binary(min_size=1, max_size=40)),
)
def test_property_garbage_is_malformed_toml(
    command: str, content: str | bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    assume(not _is_toml(content))
    with fresh_folder(tmp_path_factory) as folder:
        outcome = run_config(folder, command, content)
        assert_refused(outcome, f"{folder / (command + '.toml')}: malformed TOML (")
