"""Where a trial's training runs: in the sweep's process, or in a fresh process per trial.

A fresh process per trial frees everything a trial allocated (Keras graphs, GPU memory that
the backends never hand back, BLAS buffers) when the trial ends, at the price of a few
seconds of start-up (imports and reloading the data). The sweep process keeps the Optuna
trial: the child reports each epoch's validation accuracy over a pipe and the parent answers
whether the pruner stops it, so pruning works with every storage, including in-memory ones.
"""

from __future__ import annotations

import abc
import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from mnist_models.callbacks import Callback
from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from mnist_models.data.cache import SplitsCache
from mnist_models.errors import TrialFailed
from mnist_models.training import TrainResult
from sweeps.engine.progress import EpochPrinter, SweepProgress
from sweeps.engine.pruning import PruningCallback, Reportable
from sweeps.engine.signals import when_parent_dies
from tracking import RunLogger, train_logged
from tracking.repeats import history_rows


@dataclass(frozen=True)
class TrialOutcome:
    """What the objective needs from a trained trial (small and picklable)."""

    val_accuracy: float
    test_accuracy: float
    epochs_trained: int
    seconds: float
    stop_reason: str | None = None
    seed: int = 0
    history: tuple[dict[str, float], ...] = ()  # per-epoch metrics, for a repeats band figure
    val_text: str = ""  # how to print the figures ("0.9801 ± 0.0009" with repeats)
    test_text: str = ""

    def __post_init__(self) -> None:
        if not self.val_text:
            object.__setattr__(self, "val_text", f"{self.val_accuracy:.4f}")
        if not self.test_text:
            object.__setattr__(self, "test_text", f"{self.test_accuracy:.4f}")

    @property
    def stopped_early(self) -> bool:
        return self.stop_reason is not None

    @classmethod
    def of(cls, result: TrainResult) -> TrialOutcome:
        return cls(
            val_accuracy=result.val_accuracy,
            test_accuracy=result.test.accuracy,
            epochs_trained=result.epochs_trained,
            seconds=result.seconds,
            stop_reason=result.stop_reason,
            seed=result.config.seed,
            history=history_rows(result),
        )


class TrialRunner(abc.ABC):
    """Trains one trial's config into its (already started) MLflow run."""

    progress: SweepProgress | None = None  # set by the sweep when it shows a live bar

    @abc.abstractmethod
    def run(
        self, trial: Reportable, config: TrainConfig, run: RunLogger, name: str
    ) -> TrialOutcome:
        """Trains, logging to ``run``; reports epochs to ``trial`` (an Optuna trial, or a
        repeat's view of one) for pruning.

        Raises:
            TrialFailed: The trial cannot succeed (diverged, worker died); the sweep goes on.
        """


class InProcessRunner(TrialRunner):
    """Trains in the sweep's own process (the default: no start-up cost, shared data)."""

    def __init__(self, splits_for: Callable[[TrainConfig], Splits]) -> None:
        self.splits_for = splits_for

    def run(
        self, trial: Reportable, config: TrainConfig, run: RunLogger, name: str
    ) -> TrialOutcome:
        callbacks = [PruningCallback(trial), EpochPrinter(name)]
        if self.progress is not None:
            callbacks.append(self.progress.epoch_callback())
        return TrialOutcome.of(train_logged(run, config, self.splits_for(config), callbacks))


class SubprocessRunner(TrialRunner):
    """Trains each trial in a fresh ``spawn``-ed process that exits when the trial ends.

    Args:
        data_dir: Where the child loads MNIST from (as the sweep does; ``None``: the usual
            search order, ``$MNIST_DIR`` first).
    """

    def __init__(self, data_dir: str | Path | None = None) -> None:
        self.data_dir = None if data_dir is None else str(data_dir)
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded parent

    def run(
        self, trial: Reportable, config: TrainConfig, run: RunLogger, name: str
    ) -> TrialOutcome:
        parent_end, child_end = self._context.Pipe()
        args = (
            child_end,
            config.to_dict(),
            run.client.tracking_uri,
            run.run_id,
            name,
            self.data_dir,
        )
        process = self._context.Process(target=_child_main, args=args, name=f"mnist-sweep {name}")
        process.start()
        child_end.close()  # so a dead child shows up as EOF here
        if self.progress is not None:
            self.progress.trial_started(config.epochs)
        try:
            return _serve(trial, parent_end, process, self.progress)
        finally:
            if process.is_alive():  # interrupted or an error here: the child must not linger
                process.terminate()
            process.join()
            parent_end.close()


def _serve(
    trial: Reportable, conn: Connection, process: Any, progress: SweepProgress | None = None
) -> TrialOutcome:
    """Answers the child's pruning questions until it sends its outcome or dies."""
    while True:
        try:
            kind, payload = conn.recv()
        except EOFError:
            process.join()
            raise TrialFailed(f"trial worker process died (exit code {process.exitcode})") from None
        if kind == "report":
            value, step = payload
            trial.report(value, step=step)
            conn.send(trial.should_prune())
            if progress is not None:
                progress.epoch_done(step)
        elif kind == "done":
            return TrialOutcome(**payload)
        elif kind == "failed":
            raise TrialFailed(payload)
        else:  # "error": an unexpected exception in the child, re-raised here as is
            raise RuntimeError(f"trial worker process: {payload}")


class _PipeTrial:
    """The child's stand-in for the Optuna trial: reports and prune checks go to the parent."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._prune = False

    def report(self, value: float, step: int) -> None:
        self.conn.send(("report", (value, step)))
        self._prune = bool(self.conn.recv())

    def should_prune(self) -> bool:
        return self._prune


def _child_main(
    conn: Connection,
    config_dict: dict[str, Any],
    tracking_uri: str,
    run_id: str | None,
    name: str,
    data_dir: str | None,
) -> None:
    from mlflow import MlflowClient

    # A killed sweep must not leave its trial training on (and logging into a failed run).
    when_parent_dies(lambda: os._exit(1))
    try:
        config = TrainConfig.from_dict(config_dict)
        run = RunLogger(MlflowClient(tracking_uri=tracking_uri), run_id)
        callbacks: Sequence[Callback] = [PruningCallback(_PipeTrial(conn)), EpochPrinter(name)]
        result = train_logged(run, config, SplitsCache(data_dir)(config), callbacks)
        outcome = TrialOutcome.of(result)
        conn.send(("done", outcome.__dict__))
    except TrialFailed as exc:
        conn.send(("failed", str(exc)))
    except KeyboardInterrupt:
        pass  # the parent was interrupted too and closes the run
    except Exception as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
