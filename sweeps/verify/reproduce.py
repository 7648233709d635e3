"""``mnist-sweep reproduce RUN_ID``: re-train any logged run from its ``config.toml``.

The new run lands beside the original (same experiment unless ``--experiment``), tagged
``reproduces=<RUN_ID>``, and its final metrics are printed next to the original's.

With ``--repeats K`` (default: the original's ``repeats`` param, else 1) the config trains K
times, the original's seed first, each repeat a run nested under the new one; the table then
gives the reproductions' mean with its 95% interval, and whether the original's figures lie
inside the 95% prediction interval of one more run, i.e. within seed-to-seed spread.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator, Sequence

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
from sweeps.store.keys import REPRODUCES_TAG, STATE_TAG
from sweeps.store.storage import redact_url
from tracking import Tracker, train_and_end
from tracking.repeats import SUMMARISED, run_repeats
from tracking.runs import open_existing_store
from tracking.tags import ROLE_TAG

CONFIG_ARTIFACT = "config.toml"
# Final metrics of every run (see RunLogger.log_result); val_* hold their last epoch.
COMPARED = ("val_accuracy", "val_loss", "test_accuracy", "test_loss", "epochs_trained")


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


def reproduce_run(
    run_id: str,
    repeats: int | None = None,
    data_dir: str | None = None,
    tracking_uri: str | None = None,
    experiment: str | None = None,
) -> str:
    """Re-trains ``run_id``'s logged config into a new run and prints both runs' final metrics.

    Args:
        run_id: The MLflow run to re-run.
        repeats: Times to train, nested under the new run (``None``: the original's
            ``repeats`` param, else 1).
        data_dir: Folder with the MNIST files (``None``: the usual search).
        tracking_uri: The store of the original run, and of the new one.
        experiment: The new run's experiment (``None``: the original run's).

    Returns:
        The new run's id.

    Raises:
        ConfigError: If the store or the run does not exist or the run has no usable config.
    """
    uri, client = open_existing_store(tracking_uri, missing="no MLflow store at {path}")
    original = find_run(client, run_id, uri)
    config = logged_config(client, original)
    given = repeats
    repeats = given if given is not None else logged_repeats(original)
    experiment = experiment or client.get_experiment(original.info.experiment_id).name
    label = f"reproduce-{original.info.run_name or run_id}"
    tags = {REPRODUCES_TAG: run_id, ROLE_TAG: "reproduce", "model": config.model}
    if repeats > 1:
        if given is None:
            console.print(f"repeats: {repeats}, as the original run (its `repeats` param)")
        tracker = Tracker(experiment, uri)
        new_id = _reproduce_repeats(original, config, repeats, tracker, label, tags, data_dir)
    else:
        splits = load_splits(config, data_dir)
        tracker = Tracker(experiment, uri)
        run = tracker.start_run(label, tags=tags)
        train_and_end(run, config, splits, [EpochPrinter(label)])
        new_id = run.id
        new = client.get_run(new_id)
        console.print(comparison_table(original, new))
        _pruned_note(original)
        _digest_warning(original, new.data.tags.get("dataset.digest"))
    nested = f" ({repeats} repeats nested under it)" if repeats > 1 else ""
    console.print(
        f"MLflow run {new_id} ({label}){nested} in experiment '{experiment}' at {redact_url(uri)}",
        markup=False,
    )
    return new_id


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
    if original.data.tags.get(STATE_TAG) == "PRUNED":
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
    for key in SUMMARISED:  # each final metric: is the original inside its spread?
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
        interval = prediction_interval(values)
        inside = "-"
        if before is not None and math.isfinite(before):
            inside = "yes" if interval.contains(before) else "no"
        shown = f"{interval.low:.6f}-{interval.high:.6f}"
        table.add_row(key, _number(key, before), summarise(values).text(6), shown, inside)
    return table


def spread_sentence(
    key: str, original: float | None, finals: Sequence[dict[str, float]]
) -> str | None:
    """Whether the original's ``key`` lies in the 95% prediction interval of the repeats."""
    values = _finite_values(key, finals)
    if original is None or values is None or not math.isfinite(original):
        return None
    interval = prediction_interval(values)
    where = "inside" if interval.contains(original) else "outside"
    meaning = "within seed-to-seed spread" if where == "inside" else "beyond seed-to-seed spread"
    return (
        f"original {key} {original:.6f} lies {where} the {CONFIDENCE:.0%} prediction interval "
        f"of the {len(values)} reproductions ({interval.low:.6f} to {interval.high:.6f}): {meaning}"
    )
