"""Console progress for sweeps and single runs (rich), as one more training callback."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from mnist_models.callbacks import Callback, EpochResult
from mnist_models.config import TrainConfig
from sweeps.console import console


class EpochPrinter(Callback):
    """Prints one line per epoch (or every ``every`` epochs and the last), prefixed with the
    run's label."""

    def __init__(self, label: str, every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"{every=} must be >= 1")
        self.label = label
        self.every = every
        self.epochs = 0

    def on_train_begin(self, config: TrainConfig) -> None:
        self.epochs = config.epochs

    def on_epoch_end(self, result: EpochResult) -> None:
        if result.epoch % self.every and result.epoch != self.epochs:
            return
        console.print(
            f"[dim]{self.label}[/] epoch {result.epoch}/{self.epochs} "
            f"loss {result.train_loss:.4f} acc {result.train_accuracy:.4f} | "
            f"val loss {result.val_loss:.4f} val acc [bold]{result.val_accuracy:.4f}[/] "
            f"({result.seconds:.1f}s)"
        )


def epoch_lines(label: str) -> list[Callback]:
    """The callbacks of a run whose epochs print one line each (``callbacks_for`` of
    :func:`tracking.repeats.train_repeats`)."""
    return [EpochPrinter(label)]


class SweepProgress:
    """A live bar over the study's finished trials, with the current best, and over the
    running trial's epochs; epoch lines scroll above it. Use as a context manager."""

    def __init__(self, target: int, done: int, epochs: int, enabled: bool = True) -> None:
        self._bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not enabled,  # worker processes of --workers: lines only, one bar is enough
        )
        self._trials = self._bar.add_task("trials", total=target, completed=done)
        self._epochs = self._bar.add_task("epochs", total=epochs)

    def __enter__(self) -> SweepProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._bar.stop()

    def trial_started(self, epochs: int) -> None:
        self._bar.reset(self._epochs, total=epochs)

    def epoch_done(self, epoch: int) -> None:
        self._bar.update(self._epochs, completed=epoch)

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """Optuna callback: after each trial, the finished count and the best so far."""
        finished = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
        best = max(
            (t for t in finished if t.state == TrialState.COMPLETE and t.value is not None),
            key=lambda t: t.value or 0.0,
            default=None,
        )
        label = "trials" if best is None else f"trials (best {best.value:.4f}, trial {best.number})"
        self._bar.update(self._trials, completed=len(finished), description=label)

    def epoch_callback(self) -> Callback:
        progress = self

        class _Epochs(Callback):
            def on_train_begin(self, config: TrainConfig) -> None:
                progress.trial_started(config.epochs)

            def on_epoch_end(self, result: EpochResult) -> None:
                progress.epoch_done(result.epoch)

        return _Epochs()
