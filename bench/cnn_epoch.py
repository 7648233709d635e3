"""CNN seconds per epoch: bare ``model.fit`` vs our ``train`` path, and augmentation's cost.

Three measurements in one run, same model, data, batch size and seed: (a) ``model.fit`` on
the model from ``build_cnn`` with nothing else; (b) our ``train`` (bridge callback, plateau
schedule, per-epoch events) without augmentation; (c) the same with the fused augmentation
layer. On this 2-core VM the speed of a freshly built model varies by up to 1.7x from one
instance to the next (not from epoch to epoch), so the three variants are built afresh and
interleaved for several rounds (a b c a b c ...), each timing its epochs after the first
(which includes tracing); a variant's figure is the median over all its rounds. Prints b/a
(target <= 1.05) and c/b (target <= 1.15); the last line is
``cnn_epoch ratio=<b/a> target<=1.05``.

Usage: python bench/cnn_epoch.py [--quick] [--rounds R]   (KERAS_BACKEND picks the backend)
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np

from mnist_models.cnn.model import build_cnn, build_optimizer
from mnist_models.cnn.trainer import seed_everything
from mnist_models.config import DataConfig, TrainConfig
from mnist_models.data import Splits, load_mnist, make_splits
from mnist_models.training import train

EPOCHS = 3


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: object = None) -> None:
        self.seconds.append(time.perf_counter() - self.start)


def bare_fit(config: TrainConfig, splits: Splits) -> float:
    keras.backend.clear_session()
    seed_everything(config.seed)
    model = build_cnn(config)
    model.compile(
        optimizer=build_optimizer(config),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    timer = EpochTimer()
    model.fit(
        splits.x_train[..., None],
        splits.y_train,
        batch_size=config.batch_size,
        epochs=EPOCHS,
        validation_data=(splits.x_val[..., None], splits.y_val),
        verbose=0,
        callbacks=[timer],
    )
    return float(np.median(timer.seconds[1:]))


def ours(config: TrainConfig, splits: Splits) -> float:
    history = train(config.replace({"epochs": EPOCHS}), splits).history
    return float(np.median([event.seconds for event in history[1:]]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 training images, 2 epochs")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    args = parser.parse_args()
    global EPOCHS
    if args.quick:
        EPOCHS = 2
    data = load_mnist(os.environ.get("MNIST_DIR"), dataset="auto")
    size = 2000 if args.quick else 42000  # the report's 37,800 train + 4,200 validation
    size = min(size, len(data.y_train))
    splits = make_splits(data, DataConfig(train_size=size, val_fraction=0.1, test_size=1000), 2)
    config = TrainConfig(model="cnn", batch_size=86, seed=2)
    augmented = config.replace({"augment": True})
    times: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    for round_ in range(args.rounds):
        times["a"].append(bare_fit(config, splits))
        times["b"].append(ours(config, splits))
        times["c"].append(ours(augmented, splits))
        row = "  ".join(f"{k}={v[-1]:.2f}s" for k, v in times.items())
        print(f"round {round_ + 1}: {row}", flush=True)
    a, b, c = (float(np.median(times[k])) for k in "abc")
    n = len(splits.y_train)
    print(
        f"backend {keras.backend.backend()}, {n} training images, batch 86, "
        f"median over {args.rounds} rounds of epochs 2-{EPOCHS}"
    )
    print(f"(a) bare model.fit      {a:7.2f} s/epoch")
    print(f"(b) ours, no augment    {b:7.2f} s/epoch   b/a = {b / a:.3f}  (target <= 1.05)")
    print(f"(c) ours, augmented     {c:7.2f} s/epoch   c/b = {c / b:.3f}  (target <= 1.15)")
    print(f"cnn_epoch_augment ratio={c / b:.2f} target<=1.15")
    print(f"cnn_epoch ratio={b / a:.2f} target<=1.05")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
