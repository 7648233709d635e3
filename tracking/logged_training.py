"""Training while logging to an MLflow run, and ending the run with the right status.

:func:`train_logged` writes a run's inputs, epochs, results and (through the trainer's
``log_model`` hook) its model; :func:`ended` and :func:`train_and_end` close the run as
FINISHED, KILLED or FAILED.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator, Sequence

from mnist_models.callbacks import Callback
from mnist_models.config import TrainConfig
from mnist_models.data import Splits
from mnist_models.trainers import trainer_class
from mnist_models.training import TrainResult, train
from tracking.run_logger import RunLogger
from tracking.tags import FAILURE_TAG


def train_logged(
    run: RunLogger,
    config: TrainConfig,
    splits: Splits,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Trains ``config`` while logging config, dataset, every epoch and the result to ``run``.

    The run is left open: the caller decides its final status (finished, pruned, failed).
    """
    run.log_config(config)
    run.set_tags(trainer_class(config.model).runs_on())
    run.log_dataset(splits)
    result = train(config, splits, [run.epoch_callback(), *callbacks])
    run.log_result(result)
    result.log_model(run)  # the trainer's hook: what (if anything) it keeps, under model/
    return result


def train_and_end(
    run: RunLogger,
    config: TrainConfig,
    splits: Splits,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """:func:`train_logged`, then ends ``run``: FINISHED, KILLED on Ctrl-C, FAILED otherwise.

    For single runs (``train``, ``reproduce``); sweep trials end their runs themselves, since
    a pruned trial is neither finished nor failed.
    """
    with ended(run):
        return train_logged(run, config, splits, callbacks)


@contextlib.contextmanager
def ended(run: RunLogger) -> Iterator[RunLogger]:
    """Ends ``run`` when the block ends: FINISHED, KILLED on Ctrl-C (or a stop signal, with
    its reason), FAILED on any other error."""
    status = "FAILED"
    try:
        yield run
        status = "FINISHED"
    except KeyboardInterrupt as exc:
        status = "KILLED"
        run.set_tags({FAILURE_TAG: interrupt_reason(exc)})
        raise
    finally:
        run.end(status)


def interrupt_reason(interrupt: KeyboardInterrupt) -> str:
    """``interrupted`` (Ctrl-C), or ``interrupted by SIGTERM`` for a stop sent by a signal
    (an exception carrying ``signum``, as ``sweeps.engine.signals.Interrupted`` does)."""
    signum = getattr(interrupt, "signum", signal.SIGINT)
    return (
        "interrupted"
        if signum == signal.SIGINT
        else f"interrupted by {signal.Signals(signum).name}"
    )
