"""``mnist-sweep reproduce RUN_ID``: re-train any logged run from its ``config.toml``.

The new run lands beside the original (same experiment unless ``--experiment``), tagged
``reproduces=<RUN_ID>``, and its final metrics are printed next to the original's.

With ``--repeats K`` (default: the original's ``repeats`` param, else 1) the config trains K
times, the original's seed first, each repeat a run nested under the new one; the table then
gives the reproductions' mean with its 95% interval, and whether the original's figures lie
inside the 95% prediction interval of one more run, i.e. within seed-to-seed spread.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import tempfile
from collections.abc import Iterator, Sequence

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR
from mlflow.exceptions import MlflowException
from rich.table import Table
from rich.text import Text

from mnist_models.config import TrainConfig, read_toml
from mnist_models.data.cache import SplitsCache
from mnist_models.errors import ConfigError
from mnist_models.seeds import repeat_seeds
from mnist_models.stats import CONFIDENCE, prediction_interval, summarise
from mnist_models.training import TrainResult, load_splits
from sweeps.console import console
from sweeps.engine.progress import EpochPrinter, epoch_lines
from sweeps.reported.registry import DIFFERS
from sweeps.reported.reproduce import reproduce_reported
from sweeps.store.storage import local_path, redact_url
from tracking import Tracker, train_and_end
from tracking.repeats import run_repeats

CONFIG_ARTIFACT = "config.toml"
# Final metrics of every run (see RunLogger.log_result); val_* hold their last epoch.
COMPARED = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "epochs_trained")
JUDGED = ("val_accuracy", "test_accuracy")  # whose place in the repeats' spread is stated


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``mnist-sweep reproduce`` to the CLI's subcommands."""
    reproduce = commands.add_parser(
        "reproduce",
        help="re-train a logged run from its config.toml and compare the results",
        description="Re-train any logged run (a sweep trial or a `train` run) from its logged "
        "config.toml into a new MLflow run tagged reproduces=RUN_ID, then print the original "
        "and new final metrics side by side.",
    )
    reproduce.add_argument(
        "run_id", metavar="RUN_ID", nargs="?", help="MLflow run id of the run to re-run"
    )
    reported = reproduce.add_argument_group("the course report's published runs")
    reported.add_argument(
        "--reported",
        metavar="ID",
        help="re-run a published number from the registry (sweeps/reported/ID.toml), a "
        "comma-separated list, or 'all'; logged in the 'reported-runs' experiment",
    )
    reported.add_argument(
        "--corrected",
        action="store_true",
        help="also run each entry with its faithful-mode switches off and show that figure",
    )
    reported.add_argument("--report", metavar="FILE.md", help="write the table and notes here")
    reproduce.add_argument(
        "--repeats",
        type=int,
        metavar="K",
        help="train K times (the original seed first, then derived seeds), nested under one "
        "new run, and say whether the original lies within their seed-to-seed spread "
        "(default: the original run's `repeats` param, else 1; with --reported: 1)",
    )
    reproduce.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking URI (default: MLflow's local sqlite:///mlflow.db)",
    )
    reproduce.add_argument(
        "--experiment",
        metavar="NAME",
        help="MLflow experiment of the new run (default: the original run's)",
    )
    reproduce.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder with the four MNIST IDX files (default: $MNIST_DIR, then the "
        "cache, then ~/.keras/datasets/mnist.npz, then download)",
    )
    reproduce.set_defaults(handler=cmd_reproduce)


def open_tracking_store(tracking_uri: str | None) -> tuple[str, MlflowClient]:
    """A client of an existing tracking store (a missing SQLite file is not created).

    Raises:
        ConfigError: If the store is a local SQLite file that does not exist.
    """
    uri = tracking_uri or mlflow.get_tracking_uri()
    local = local_path(uri) if uri.startswith("sqlite:///") else None
    if local is not None and not local.is_file():
        raise ConfigError(f"--tracking-uri {redact_url(uri)!r}: no MLflow store at {local}")
    return uri, MlflowClient(tracking_uri=uri)


def find_run(client: MlflowClient, run_id: str, uri: str) -> Run:
    """The run ``run_id``; an unknown id is a ConfigError naming it and the store."""
    try:
        return client.get_run(run_id)
    except MlflowException:
        raise ConfigError(f"RUN_ID {run_id!r}: no such run in {redact_url(uri)}") from None


def logged_config(client: MlflowClient, run: Run) -> TrainConfig:
    """The run's logged ``config.toml``, validated like any config file.

    Raises:
        ConfigError: If the run has no such artifact or it cannot be read or parsed.
    """
    run_id = run.info.run_id
    where = f"run {run_id} ({run.info.run_name})"
    try:
        names = {artifact.path for artifact in client.list_artifacts(run_id)}
        if CONFIG_ARTIFACT not in names:
            raise ConfigError(
                f"RUN_ID {run_id!r}: {where} has no {CONFIG_ARTIFACT} artifact "
                "(only trial and `train` runs log one)"
            )
        with tempfile.TemporaryDirectory(prefix="reproduce-") as folder, _no_progress_bar():
            path = client.download_artifacts(run_id, CONFIG_ARTIFACT, folder)
            try:
                document = read_toml(path)
            except ConfigError as exc:
                raise ConfigError(str(exc).replace(path, f"{CONFIG_ARTIFACT} of {where}")) from None
    except (MlflowException, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"RUN_ID {run_id!r}: cannot read {CONFIG_ARTIFACT} ({reason})") from None
    return TrainConfig.from_dict(document, source=f"{CONFIG_ARTIFACT} of {where}")


@contextlib.contextmanager
def _no_progress_bar() -> Iterator[None]:
    """Turns off MLflow's download progress bar (one file: only noise on the console)."""
    name = MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.name
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def cmd_reproduce(args: argparse.Namespace) -> int:
    """Re-trains ``RUN_ID``'s config into a new run and prints both runs' final metrics."""
    if args.repeats is not None and args.repeats < 1:
        raise ConfigError(f"--repeats {args.repeats}: expected >= 1")
    if args.reported is not None:
        if args.run_id is not None:
            raise ConfigError("give either RUN_ID or --reported ID, not both")
        rows = reproduce_reported(
            args.reported,
            args.corrected,
            args.data_dir,
            args.tracking_uri,
            args.report,
            repeats=args.repeats or 1,
        )
        return 1 if any(row.verdict.label == DIFFERS for row in rows) else 0
    if args.run_id is None:
        raise ConfigError("RUN_ID: expected an MLflow run id (or --reported ID|all)")
    if args.corrected or args.report:
        raise ConfigError("--corrected and --report go with --reported")
    uri, client = open_tracking_store(args.tracking_uri)
    original = find_run(client, args.run_id, uri)
    config = logged_config(client, original)
    repeats = args.repeats if args.repeats is not None else logged_repeats(original)
    experiment = args.experiment or client.get_experiment(original.info.experiment_id).name
    label = f"reproduce-{original.info.run_name or args.run_id}"
    tags = {"reproduces": args.run_id, "mnist_sweeps.role": "reproduce", "model": config.model}
    if repeats > 1:
        if args.repeats is None:
            console.print(f"repeats: {repeats}, as the original run (its `repeats` param)")
        tracker = Tracker(experiment, uri)
        run_id = _reproduce_repeats(original, config, repeats, tracker, label, tags, args.data_dir)
    else:
        splits = load_splits(config, args.data_dir)
        tracker = Tracker(experiment, uri)
        run = tracker.start_run(label, tags=tags)
        train_and_end(run, config, splits, [EpochPrinter(label)])
        run_id = run.id
        new = client.get_run(run_id)
        console.print(comparison_table(original, new))
        _pruned_note(original)
        _digest_warning(original, new.data.tags.get("dataset.digest"))
    nested = f" ({repeats} repeats nested under it)" if repeats > 1 else ""
    console.print(
        f"MLflow run {run_id} ({label}){nested} in experiment '{experiment}' at {redact_url(uri)}",
        markup=False,
    )
    return 0


def logged_repeats(run: Run) -> int:
    """The original run's ``repeats`` param (a configuration trained K times), else 1.

    Raises:
        ConfigError: If the param is there but not a whole number >= 1.
    """
    logged = run.data.params.get("repeats")
    if logged is None:
        return 1
    try:
        value = int(logged)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(
            f"RUN_ID {run.info.run_id!r}: param repeats={logged!r} is not a whole number >= 1; "
            "pass --repeats K"
        )
    return value


def _pruned_note(original: Run) -> None:
    if original.data.tags.get("optuna.state") == "PRUNED":
        console.print(
            f"note: the original trial was pruned at epoch "
            f"{original.data.tags.get('pruned_at_epoch', '?')}; this run trained every epoch"
        )


def _digest_warning(original: Run, after: str | None) -> None:
    before = original.data.tags.get("dataset.digest")
    if before and before != after:
        console.print(
            f"[yellow bold]warning:[/] the data differ from the original run's "
            f"(dataset.digest {before} there, {after} here); pass the --data-dir it used"
        )


def _reproduce_repeats(
    original: Run,
    config: TrainConfig,
    repeats: int,
    tracker: Tracker,
    label: str,
    tags: dict[str, str],
    data_dir: str | None,
) -> str:
    """Trains ``config`` ``repeats`` times nested under one new run; prints the comparison.

    Returns:
        The new (parent) run's id.
    """
    seeds = repeat_seeds(config.seed, repeats)
    finals: list[dict[str, float]] = []
    digests: list[str] = []

    def keep(result: TrainResult) -> None:
        # The figures the single-run table compares, as RunLogger.log_result logs them.
        last = result.history[-1] if result.history else None
        finals.append(
            {
                "val_accuracy": result.val_accuracy,
                "val_loss": last.val_loss if last is not None else math.nan,
                "test_accuracy": result.test.accuracy,
                "test_loss": result.test.loss,
                "epochs_trained": result.epochs_trained,
            }
        )
        digests.append(result.splits.digest)

    parent, _ = run_repeats(
        tracker,
        label,
        config,
        seeds,
        SplitsCache(data_dir),
        tags,
        callbacks_for=epoch_lines,
        on_result=keep,
    )
    console.print(repeats_table(original, finals, label))
    for key in JUDGED:
        sentence = spread_sentence(key, original.data.metrics.get(key), finals)
        if sentence:
            console.print(sentence, markup=False)
    if logged_repeats(original) > 1:
        console.print(
            "note: the original's figures are means over its own repeats; trained with the "
            "same seeds, the reproduced means should equal them"
        )
    _pruned_note(original)
    # Repeat 0 has the original's seed, so its split (and digest) should be the original's.
    _digest_warning(original, digests[0] if digests else None)
    return parent.id


def comparison_table(original: Run, new: Run) -> Table:
    """Final metrics of both runs with the difference (new minus original)."""
    table = Table(title=Text(f"{new.info.run_name} vs {original.info.run_id}"))
    table.add_column("metric", no_wrap=True)
    for column in ("original", "reproduced", "difference"):
        table.add_column(column, justify="right", no_wrap=True)
    for key in COMPARED:
        before = original.data.metrics.get(key)
        after = new.data.metrics.get(key)
        if before is None and after is None:
            continue
        table.add_row(key, _number(key, before), _number(key, after), _difference(before, after))
    return table


def _number(key: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if key == "epochs_trained" else f"{value:.6f}"


def _difference(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return "-"
    if before == after or (math.isnan(before) and math.isnan(after)):
        return "identical"
    return f"{after - before:+.3g}"


def _finite_values(key: str, finals: Sequence[dict[str, float]]) -> list[float] | None:
    values = [float(final[key]) for final in finals]
    return values if values and all(math.isfinite(v) for v in values) else None


def repeats_table(original: Run, finals: Sequence[dict[str, float]], label: str) -> Table:
    """The original's final metrics beside the reproductions' mean with its 95% interval, the
    95% prediction interval of one more run, and whether the original lies in the latter.

    Five narrow columns: the table fits the 80 columns of a log file or a CI console.
    """
    n = len(finals)
    level = f"{CONFIDENCE:.0%}"
    table = Table(title=Text(f"{label} ({n} repeats) vs {original.info.run_id}"))
    table.add_column("metric", no_wrap=True)
    for column in ("original", f"mean ± {level} CI", f"{level} PI of a run", "inside"):
        table.add_column(column, justify="right", no_wrap=True)
    for key in COMPARED:
        before = original.data.metrics.get(key)
        values = _finite_values(key, finals)
        if before is None and values is None:
            continue
        if key == "epochs_trained":  # a count, not a measurement: its range, not its spread
            trained = sorted({int(v) for v in values or []})
            shown = "-" if not trained else f"{trained[0]}-{trained[-1]}"
            shown = str(trained[0]) if len(trained) == 1 else shown
            table.add_row(key, _number(key, before), shown, "", "")
            continue
        if values is None:
            table.add_row(key, _number(key, before), "-", "-", "-")
            continue
        low, high = prediction_interval(values)
        inside = "-"
        if before is not None and math.isfinite(before):
            inside = "yes" if low <= before <= high else "no"
        table.add_row(
            key, _number(key, before), summarise(values).text(6), f"{low:.6f}-{high:.6f}", inside
        )
    return table


def spread_sentence(
    key: str, original: float | None, finals: Sequence[dict[str, float]]
) -> str | None:
    """Whether the original's ``key`` lies in the 95% prediction interval of the repeats."""
    values = _finite_values(key, finals)
    if original is None or values is None or not math.isfinite(original):
        return None
    low, high = prediction_interval(values)
    where = "inside" if low <= original <= high else "outside"
    meaning = "within seed-to-seed spread" if where == "inside" else "beyond seed-to-seed spread"
    return (
        f"original {key} {original:.6f} lies {where} the {CONFIDENCE:.0%} prediction interval "
        f"of the {len(values)} reproductions ({low:.6f} to {high:.6f}): {meaning}"
    )
