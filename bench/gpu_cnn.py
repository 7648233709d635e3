"""The packaged CNN's seconds per epoch on whatever device Keras finds (meant for a GPU).

What a CNN sweep costs on an accelerator: the packaged CNN (the ``[fixed]`` settings of
``sweeps/cnn.toml``: RMSprop, batch 86, plateau schedule) on full MNIST (60,000 training
images, the config's ``val_fraction`` 0.1 holding out 6,000 for validation: 54,000 trained),
four variants in one process, same config, data and seed:

- (a) bare ``model.fit`` on the model of ``build_cnn`` compiled with ``build_optimizer``;
- (b) our ``train`` path (``CNNTrainer``: bridge callback, plateau schedule, epoch events);
- (c) bare ``model.fit`` of ``Sequential([Input, RandomAffine, net])``, the augmented model
  ``CNNTrainer`` builds;
- (d) our ``train`` with ``augment = affine``.

On a GPU an epoch is about a second, so fixed costs that vanish on a CPU (per-step Python in
Keras's loop, our callbacks, host-to-device copies, the augmentation layer) are what the
ratios measure. As in ``cnn_epoch.py`` (a freshly built model's speed varies between
instances, on the 2-core VM by up to 1.7x), every variant is built afresh and the four are
interleaved for several rounds (a b c d a b c d ...; each ratio's pair runs side by side).
Each run times its epochs from one epoch's end to the next (validation included); the first
epoch also traces and compiles the train step, so a variant's s/epoch is the median of its
later epochs over all rounds, and its compile overhead (first epoch minus that run's later
median) is reported on its own, median over rounds (round 1 also pays the process's device
start-up).

Prints the backend and device, each variant's s/epoch and compile overhead, ours/bare plain
and augmented (target <= 1.05), augmented/plain ours (target <= 1.15) and what a 30-epoch
augmented trial on 54,000 images would take (30 x (d)'s s/epoch, scaled linearly from the
measured training size when that differs, plus (d)'s compile overhead). The headline is the
geometric mean of the plain and augmented ours/bare ratios: the packaged sweep searches
``augment`` in {false, true}, so a trial is either kind, and the mean of two interleaved
measurements is steadier than one. The last line is ``gpu_cnn ratio=<that> target<=1.05``.

Usage: python bench/gpu_cnn.py [--quick] [--rounds R] [--epochs E] [--train-size N]
(``KERAS_BACKEND`` picks the backend; Keras puts the work on a GPU when it sees one.)
"""

from __future__ import annotations

import argparse
import math
import os
import time
from dataclasses import dataclass, field

import keras
import numpy as np
from cnn_epoch import bare_epochs, our_epochs

from mnist_models.cnn.device import backend_device, backend_requirements
from mnist_models.config import TrainConfig
from mnist_models.data import Splits, load_mnist, make_splits
from sweeps.spec.sweep_file import SweepConfig

FULL_TRAIN = 60000  # all of MNIST's training images: 54,000 trained + 6,000 validation
TRIAL_EPOCHS = 30  # the extrapolated trial: a sweep trial worth running on a GPU
# Quick: a few minutes on the 2-core VM (JAX's CPU convolutions are ~4x slower than TF's).
QUICK = {"train_size": 1000, "epochs": 2, "rounds": 2}
FULL = {"train_size": FULL_TRAIN, "epochs": 3, "rounds": 3}
VARIANTS = {
    "a": "bare model.fit",
    "b": "ours (train)",
    "c": "bare, augmented",
    "d": "ours, augmented",
}


@dataclass
class Timings:
    """One variant's runs: the s/epoch after the first and the compile overhead of each."""

    per_epoch: list[float] = field(default_factory=list)
    compile: list[float] = field(default_factory=list)

    def add(self, epoch_seconds: list[float]) -> None:
        steady = float(np.median(epoch_seconds[1:]))
        self.per_epoch.append(steady)
        self.compile.append(epoch_seconds[0] - steady)

    @property
    def seconds(self) -> float:
        return float(np.median(self.per_epoch))

    @property
    def overhead(self) -> float:
        return float(np.median(self.compile))


def device_description() -> str:
    """Where the backend runs the model, e.g. ``gpu NVIDIA H200`` or ``cpu`` (what CNN runs
    record as their ``device`` tag); a device it cannot name must not cost the measurement."""
    try:
        return backend_device()
    except Exception as exc:
        return f"unknown ({type(exc).__name__}: {exc})"


def backend_version() -> str:
    """The backend library's version (``jax==0.10.2``), for the record beside the figures."""
    return " ".join(backend_requirements()[1:]) or "?"


def packaged_config() -> TrainConfig:
    """The ``[fixed]`` settings of ``sweeps/cnn.toml`` (augmentation off; the sweep searches it)."""
    return SweepConfig.for_model("cnn").base


def load_splits(config: TrainConfig, train_size: int, test_size: int | None) -> Splits:
    """The first ``train_size`` MNIST training images split by the config's data settings
    (at most what the data holds: the bundled sample when full MNIST is nowhere)."""
    data = load_mnist(os.environ.get("MNIST_DIR"), dataset=config.data.dataset)
    size = min(train_size, len(data.y_train))
    data_config = config.replace({"data.train_size": size, "data.test_size": test_size}).data
    return make_splits(data, data_config, config.seed, dtype=config.dtype)


def measure_round(
    config: TrainConfig, splits: Splits, epochs: int, times: dict[str, Timings]
) -> float:
    """One round of the four variants, in order a b c d; returns (d)'s seconds outside its
    epochs (building the trainer, scoring the test set), which a trial pays once."""
    augmented = config.replace({"augment": "affine"})
    times["a"].add(bare_epochs(config, splits, epochs))
    times["b"].add([e.seconds for e in our_epochs(config, splits, epochs).history])
    times["c"].add(bare_epochs(augmented, splits, epochs))
    result = our_epochs(augmented, splits, epochs)
    seconds = [e.seconds for e in result.history]
    times["d"].add(seconds)
    return result.seconds - sum(seconds)


def report(times: dict[str, Timings], n_train: int, outside: float) -> None:
    """Prints the per-variant table, the ratios and the extrapolated trial; the last line is
    the headline."""
    for key, name in VARIANTS.items():
        t = times[key]
        print(
            f"({key}) {name:<17} {t.seconds:8.3f} s/epoch   "
            f"first-epoch compile overhead {t.overhead:7.2f} s"
        )
    a, b, c, d = (times[k].seconds for k in "abcd")
    plain, augmented, augment_cost = b / a, d / c, d / b
    headline = math.sqrt(plain * augmented)
    print(f"ours/bare, plain       b/a = {plain:.3f}  (target <= 1.05)")
    print(f"ours/bare, augmented   d/c = {augmented:.3f}  (target <= 1.05)")
    print(f"augmented/plain, ours  d/b = {augment_cost:.3f}  (target <= 1.15)")
    print(f"bare augmented/plain   c/a = {c / a:.3f}  (the augmentation layer alone)")
    full_epoch = d * (FULL_TRAIN * 0.9) / n_train  # linear in the images trained
    trial = TRIAL_EPOCHS * full_epoch + times["d"].overhead
    scaled = "" if n_train == int(FULL_TRAIN * 0.9) else f", scaled from {n_train} images"
    print(
        f"one augmented epoch on 54,000 images takes about {full_epoch:.2f} s (ours{scaled}); "
        f"one plain epoch about {b * (FULL_TRAIN * 0.9) / n_train:.2f} s"
    )
    print(
        f"a {TRIAL_EPOCHS}-epoch augmented trial takes about {trial:.0f} s "
        f"({TRIAL_EPOCHS} x {full_epoch:.2f} s + {times['d'].overhead:.2f} s compile overhead; "
        f"plus {outside:.2f} s outside the epochs: building the model, scoring the test set)"
    )
    print(f"gpu_cnn_augment ratio={augment_cost:.2f} target<=1.15")
    print(f"gpu_cnn ratio={headline:.2f} target<=1.05")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="defaults for a CPU: 1,000 images (900 trained), 2 epochs, 2 rounds",
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 2)")
    parser.add_argument(
        "--epochs", type=int, help="epochs per run, the first not timed (default 3; quick 2)"
    )
    parser.add_argument(
        "--train-size",
        type=int,
        help="MNIST training images taken before the 10%% validation split "
        "(default 60,000: 54,000 trained; quick 1,000)",
    )
    args = parser.parse_args()
    defaults = QUICK if args.quick else FULL
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch (compilation) is not timed")
    if args.rounds < 1 or args.train_size < 20:
        parser.error("--rounds must be >= 1 and --train-size >= 20")
    return args


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    config = packaged_config()
    # The test set is scored once per trial, outside the timed epochs; a quick run needs few.
    splits = load_splits(config, args.train_size, 1000 if args.quick else None)
    n_train = len(splits.y_train)
    print(
        f"backend {keras.backend.backend()} {backend_version()} (Keras {keras.__version__}), "
        f"device {device_description()}",
        flush=True,
    )
    print(
        f"packaged CNN (sweeps/cnn.toml [fixed]: {config.cnn.optimizer}, lr {config.lr}, "
        f"batch {config.batch_size}), {n_train} training + {len(splits.y_val)} validation "
        f"images, {args.epochs} epochs per run, {args.rounds} rounds",
        flush=True,
    )
    times = {key: Timings() for key in VARIANTS}
    outside: list[float] = []
    for round_ in range(args.rounds):
        outside.append(measure_round(config, splits, args.epochs, times))
        row = "  ".join(
            f"{k}={t.per_epoch[-1]:.3f}s (+{t.compile[-1]:.2f})" for k, t in times.items()
        )
        print(f"round {round_ + 1}: {row}", flush=True)
    print(
        f"median over {args.rounds} rounds of epochs 2-{args.epochs}; "
        f"the whole run took {time.perf_counter() - started:.0f} s"
    )
    report(times, n_train, float(np.median(outside)))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
