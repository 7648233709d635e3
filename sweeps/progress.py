"""Console progress for sweeps and single runs (rich), as one more training callback."""

from __future__ import annotations

from rich.console import Console

from mnist_models.callbacks import Callback, EpochResult
from mnist_models.config import TrainConfig

console = Console(stderr=True, highlight=False, soft_wrap=True)


class EpochPrinter(Callback):
    """Prints one line per epoch, prefixed with the run's label."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.epochs = 0

    def on_train_begin(self, config: TrainConfig) -> None:
        self.epochs = config.epochs

    def on_epoch_end(self, result: EpochResult) -> None:
        console.print(
            f"[dim]{self.label}[/] epoch {result.epoch}/{self.epochs} "
            f"loss {result.train_loss:.4f} acc {result.train_accuracy:.4f} | "
            f"val loss {result.val_loss:.4f} val acc [bold]{result.val_accuracy:.4f}[/] "
            f"({result.seconds:.1f}s)"
        )
