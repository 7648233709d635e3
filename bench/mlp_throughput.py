"""numpy MLP training throughput as a fraction of bare float32 GEMM on the same shapes.

For each hidden width, one training epoch of our trainer (784 → H → 10, batch 128, float32,
SGD so the optimizer's elementwise work stays small) is timed against a loop that performs only
the epoch's matrix products (forward x·W1 and h·W2, gradients h^T·g, g·W2^T and x^T·g1) on
preallocated arrays. The ratio is effective GFLOP/s of ours over the GEMM loop's, measured
side by side in this run: each repeat times one epoch of ours, then a bare numpy loop (the
same epoch written out by hand the textbook way, for reference), then the GEMM loop, so that
load from other processes falls on all alike, and the fastest of each is kept. Last line:
``mlp_throughput ratio=X.XX target>=0.80`` (the lower of the widths).

Usage: python bench/mlp_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from mnist_models.config import DataConfig, TrainConfig
from mnist_models.data import Splits, load_mnist, make_splits
from mnist_models.mlp.trainer import MLPTrainer

BATCH = 128
REPEATS = 3  # interleaved (ours, GEMM) pairs per width


def gemm_epoch(n: int, hidden: int, rng: np.random.Generator) -> float:
    """Seconds for the epoch's matrix products alone, on preallocated float32 arrays."""
    x = rng.random((BATCH, 784), dtype=np.float32)
    w1 = rng.random((784, hidden), dtype=np.float32)
    w2 = rng.random((hidden, 10), dtype=np.float32)
    h = np.empty((BATCH, hidden), np.float32)
    o = np.empty((BATCH, 10), np.float32)
    g1 = np.empty((BATCH, hidden), np.float32)
    dw1, dw2 = np.empty_like(w1), np.empty_like(w2)
    start = time.perf_counter()
    for _ in range(n // BATCH):
        np.matmul(x, w1, out=h)
        np.matmul(h, w2, out=o)
        np.matmul(h.T, o, out=dw2)
        np.matmul(o, w2.T, out=g1)
        np.matmul(x.T, g1, out=dw1)
    return time.perf_counter() - start


def bare_epoch(x_all: np.ndarray, y_all: np.ndarray, hidden: int, seed: int) -> float:
    """Seconds for the same epoch as a hand-written numpy loop: shuffled minibatches, biases,
    ReLU, softmax cross-entropy and SGD, with the usual in-place updates."""
    rng = np.random.default_rng(seed)
    w1 = rng.standard_normal((784, hidden), dtype=np.float32) * np.float32(np.sqrt(2 / 784))
    w2 = rng.standard_normal((hidden, 10), dtype=np.float32) * np.float32(np.sqrt(2 / hidden))
    b1, b2 = np.zeros(hidden, np.float32), np.zeros(10, np.float32)
    rows, lr = np.arange(BATCH), 0.01
    start = time.perf_counter()
    order = rng.permutation(len(y_all))
    for i in range(0, len(y_all), BATCH):
        index = order[i : i + BATCH]
        x, y = x_all[index], y_all[index]
        h = x @ w1
        h += b1
        np.maximum(h, 0, out=h)
        o = h @ w2
        o += b2
        o -= o.max(axis=1, keepdims=True)
        p = np.exp(o)
        sums = p.sum(axis=1, keepdims=True)
        _loss = float(np.log(sums[:, 0]).sum() - o[rows[: len(y)], y].sum())
        _correct = int(np.count_nonzero(o.argmax(axis=1) == y))
        p /= sums
        p[rows[: len(y)], y] -= 1
        p *= 1.0 / len(y)
        dw2, db2 = h.T @ p, p.sum(axis=0)
        dh = p @ w2.T
        dh *= h > 0
        dw1, db1 = x.T @ dh, dh.sum(axis=0)
        for w, g in ((w1, dw1), (b1, db1), (w2, dw2), (b2, db2)):
            g *= -lr
            w += g
    return time.perf_counter() - start


def flops(n: int, hidden: int) -> float:
    batches = n // BATCH
    per_batch = 2 * BATCH * (784 * hidden * 2 + hidden * 10 * 3)
    return float(batches * per_batch)


def our_epoch(splits: Splits, hidden: int) -> float:
    config = TrainConfig().replace(
        {
            "batch_size": BATCH,
            "dropout": 0.0,
            "lr": 0.01,
            "mlp.optimizer": "sgd",
            "mlp.hidden_sizes": [hidden],
            "mlp.dtype": "float32",
        }
    )
    trainer = MLPTrainer(config, splits)
    start = time.perf_counter()
    trainer.train_epoch()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k images instead of 60k")
    args = parser.parse_args()
    train_size = 10_000 if args.quick else 60_000
    data = load_mnist(os.environ.get("MNIST_DIR"), dataset="auto")
    train_size = min(train_size, len(data.y_train))
    splits = make_splits(data, DataConfig(train_size=train_size, val_fraction=0.0), 0)
    n = len(splits.y_train)
    ratios = []
    rng = np.random.default_rng(0)
    flat = splits.x_train.reshape(n, -1)
    for hidden in (256, 1024):
        times = [
            (
                our_epoch(splits, hidden),
                bare_epoch(flat, splits.y_train, hidden, repeat),
                gemm_epoch(n, hidden, rng),
            )
            for repeat in range(REPEATS)
        ]
        ours, bare, gemm = (min(column) for column in zip(*times, strict=True))
        work = flops(n, hidden)
        ratio = gemm / ours
        ratios.append(ratio)
        print(
            f"width {hidden:5d}: ours {ours:6.2f}s ({work / ours / 1e9:6.1f} GFLOP/s)  "
            f"bare numpy loop {bare:6.2f}s ({work / bare / 1e9:6.1f})  "
            f"GEMM only {gemm:6.2f}s ({work / gemm / 1e9:6.1f})  "
            f"ratio {ratio:.2f} (bare loop {gemm / bare:.2f})"
        )
    print(f"mlp_throughput ratio={min(ratios):.2f} target>=0.80")


if __name__ == "__main__":
    main()
