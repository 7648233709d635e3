"""CNN seconds per epoch: bare ``model.fit`` vs our ``train`` path, and augmentation's cost.

Four measurements in one run, same model, data, batch size and seed: (a) ``model.fit`` on
the model from ``build_cnn`` with nothing else; (b) our ``train`` (bridge callback, plateau
schedule, per-epoch events) without augmentation; (c) the same with the fused affine
augmentation layer (``augment = affine``); (d) the same with the elastic one
(``augment = elastic``). On this 2-core VM the speed of a freshly built model varies by up to
1.7x from one instance to the next (not from epoch to epoch), so the variants are built
afresh and interleaved for several rounds (a b c d a b c d ...), each timing its epochs after
the first (which includes tracing); a variant's figure is the median over all its rounds.
Prints b/a (target <= 1.05), c/b (target <= 1.15) and d/b (no target yet); the last line is
``cnn_epoch ratio=<b/a> target<=1.05``.

The helpers here (:func:`bare_epochs`, :func:`our_epochs`) are shared with ``gpu_cnn.py``.

Usage: python bench/cnn_epoch.py [--quick] [--rounds R]   (KERAS_BACKEND picks the backend)
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np

from mnist_models.cnn.augment import with_augmentation
from mnist_models.cnn.model import build_cnn, build_optimizer
from mnist_models.cnn.trainer import seed_everything
from mnist_models.config import DataConfig, TrainConfig
from mnist_models.data import Splits, load_mnist, make_splits
from mnist_models.training import TrainResult, train

EPOCHS = 3


class EpochTimer(keras.callbacks.Callback):
    """Seconds from one epoch's end to the next, the way ``train`` times its epoch events.

    The clock starts at :meth:`start` (just before ``fit``), so the first epoch includes
    ``fit``'s set-up and tracing as ours does, and later ones include what runs between
    epochs (other callbacks), again as ours does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self.last = time.perf_counter()

    def start(self) -> None:
        self.last = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: object = None) -> None:
        # Keras has turned the epoch's logs into Python floats by now, so on an accelerator
        # with asynchronous dispatch (JAX) the epoch's work has finished: the clock is honest.
        now = time.perf_counter()
        self.seconds.append(now - self.last)
        self.last = now


def bare_model(config: TrainConfig) -> keras.Model:
    """``build_cnn`` compiled with ``build_optimizer``; when ``config.augment`` asks for it,
    behind the same front layers that ``CNNTrainer`` puts before it (and nothing else)."""
    keras.backend.clear_session()
    seed_everything(config.seed)
    model = build_cnn(config)
    if config.augmented:
        model = with_augmentation(model, config)
    model.compile(
        optimizer=build_optimizer(config),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def bare_epochs(config: TrainConfig, splits: Splits, epochs: int) -> list[float]:
    """Seconds of each epoch of a bare ``model.fit`` (validation included, as in ours)."""
    model = bare_model(config)
    timer = EpochTimer()
    timer.start()
    model.fit(
        splits.x_train[..., None],
        splits.y_train,
        batch_size=config.batch_size,
        epochs=epochs,
        validation_data=(splits.x_val[..., None], splits.y_val),
        verbose=0,
        callbacks=[timer],
    )
    return timer.seconds


def our_epochs(config: TrainConfig, splits: Splits, epochs: int) -> TrainResult:
    """Our ``train`` for ``epochs`` epochs; its history holds each epoch's seconds."""
    return train(config.replace({"epochs": epochs}), splits)


def bare_fit(config: TrainConfig, splits: Splits, epochs: int = EPOCHS) -> float:
    """Median seconds of a bare ``model.fit``'s epochs after the first."""
    return float(np.median(bare_epochs(config, splits, epochs)[1:]))


def ours(config: TrainConfig, splits: Splits, epochs: int = EPOCHS) -> float:
    """Median seconds of our ``train``'s epochs after the first."""
    history = our_epochs(config, splits, epochs).history
    return float(np.median([event.seconds for event in history[1:]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 training images, 2 epochs")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()
    epochs = 2 if args.quick else EPOCHS
    data = load_mnist(os.environ.get("MNIST_DIR"), dataset="auto")
    size = 2000 if args.quick else 42000  # the report's 37,800 train + 4,200 validation
    size = min(size, len(data.y_train))
    splits = make_splits(data, DataConfig(train_size=size, val_fraction=0.1, test_size=1000), 2)
    config = TrainConfig(model="cnn", batch_size=86, seed=2)
    augmented = config.replace({"augment": "affine"})
    elastic = config.replace({"augment": "elastic"})
    times: dict[str, list[float]] = {"a": [], "b": [], "c": [], "d": []}
    for round_ in range(args.rounds):
        times["a"].append(bare_fit(config, splits, epochs))
        times["b"].append(ours(config, splits, epochs))
        times["c"].append(ours(augmented, splits, epochs))
        times["d"].append(ours(elastic, splits, epochs))
        row = "  ".join(f"{k}={v[-1]:.2f}s" for k, v in times.items())
        print(f"round {round_ + 1}: {row}", flush=True)
    a, b, c, d = (float(np.median(times[k])) for k in "abcd")
    n = len(splits.y_train)
    print(
        f"backend {keras.backend.backend()}, {n} training images, batch 86, "
        f"median over {args.rounds} rounds of epochs 2-{epochs}"
    )
    print(f"(a) bare model.fit      {a:7.2f} s/epoch")
    print(f"(b) ours, no augment    {b:7.2f} s/epoch   b/a = {b / a:.3f}  (target <= 1.05)")
    print(f"(c) ours, affine        {c:7.2f} s/epoch   c/b = {c / b:.3f}  (target <= 1.15)")
    print(f"(d) ours, elastic       {d:7.2f} s/epoch   d/b = {d / b:.3f}")
    print(f"cnn_epoch_elastic ratio={d / b:.2f}")
    print(f"cnn_epoch_augment ratio={c / b:.2f} target<=1.15")
    print(f"cnn_epoch ratio={b / a:.2f} target<=1.05")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
