"""What distorting the training images costs the numpy MLP, per epoch, against a plain epoch.

For the MLP of the record sweep (784 → 800 → 800 → 10, batch 128, float32, Adam) one training
epoch is timed plain, with ``augment = affine``, ``elastic`` and ``affine+elastic``, interleaved
(one of each per repeat, so that load from other processes falls on all alike; the fastest of
each is kept). The elastic fields are also drawn the textbook way, with
``scipy.ndimage.gaussian_filter`` per batch, against ours (the same smoothing as two small
matrix products per image, :func:`mnist_models.smoothing.gaussian_matrix`): that ratio says
what the matrix form buys. Last line: ``augment_cost elastic/plain=X target<=1.50`` (the
bilinear gather costs the same per image whatever the model: the smaller the MLP, the larger
this ratio).

Usage: python bench/augment_cost.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from scipy import ndimage

from mnist_models.config import AugmentationConfig, DataConfig, TrainConfig
from mnist_models.data import Splits, load_mnist, make_splits
from mnist_models.mlp.augment import elastic_displacements
from mnist_models.mlp.trainer import MLPTrainer

BATCH = 128
REPEATS = 3
KINDS = ("none", "affine", "elastic", "affine+elastic")


def epoch_seconds(splits: Splits, augment: str) -> float:
    """One training epoch of the record-sized MLP with ``augment``."""
    config = TrainConfig().replace(
        {"batch_size": BATCH, "augment": augment, "mlp.hidden_sizes": [800, 800]}
    )
    trainer = MLPTrainer(config, splits)
    start = time.perf_counter()
    trainer.train_epoch()
    return time.perf_counter() - start


def fields_seconds(n: int, textbook: bool) -> float:
    """Drawing one epoch's elastic fields, batch by batch: ours, or ``gaussian_filter``."""
    config, rng = AugmentationConfig(), np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(0, n, BATCH):
        if textbook:
            noise = rng.random((BATCH, 2, 28, 28), dtype=np.float32) * 2 - 1
            sigma = (0, 0, config.sigma, config.sigma)
            ndimage.gaussian_filter(noise, sigma, mode="constant") * config.alpha
        else:
            elastic_displacements(BATCH, 28, config, rng, np.float32)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k images instead of 60k")
    args = parser.parse_args()
    data = load_mnist(os.environ.get("MNIST_DIR"), dataset="auto")
    train_size = min(10_000 if args.quick else 60_000, len(data.y_train))
    splits = make_splits(data, DataConfig(train_size=train_size, val_fraction=0.0), 0)
    n = len(splits.y_train)
    times: dict[str, list[float]] = {kind: [] for kind in (*KINDS, "ours", "textbook")}
    for _ in range(REPEATS):
        for kind in KINDS:
            times[kind].append(epoch_seconds(splits, kind))
        times["ours"].append(fields_seconds(n, textbook=False))
        times["textbook"].append(fields_seconds(n, textbook=True))
    best = {kind: min(values) for kind, values in times.items()}
    plain = best["none"]
    print(f"one epoch of 784-800-800-10 on {n} images, batch {BATCH}, fastest of {REPEATS}:")
    for kind in KINDS:
        print(f"  augment={kind:15s} {best[kind]:6.2f}s  x{best[kind] / plain:.2f} of plain")
    print(
        f"elastic fields for one epoch: ours {best['ours']:.2f}s, gaussian_filter "
        f"{best['textbook']:.2f}s (x{best['textbook'] / best['ours']:.1f} slower)"
    )
    print(f"augment_cost elastic/plain={best['elastic'] / plain:.2f} target<=1.50")


if __name__ == "__main__":
    main()
