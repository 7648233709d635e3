"""Faithful per-sample runs (the reported Part 1 runs): fast batch-1 kernel vs generic layers.

The registry's batch-size-1 entries (``baseline``: 784-40-10, 350 passes; ``dropout``:
784-100-10 with dropout, 300 passes; both on 1,000 images, float64, legacy RNG, faithful-mode
switches on) are trained twice through ``mnist_models.training.train`` with the entry's own
config and splits: once as the product runs them (``MLPTrainer`` picks
``mnist_models.mlp.per_sample.PerSampleSGD`` by itself) and once with the straightforward
per-sample loop through the generic layers (``MLPTrainer(..., per_sample_kernel=False)``,
swapped in for the product's ``make_trainer`` here). The two alternate for several rounds
(fast generic generic fast ...); each figure is the minimum wall time over the rounds of one
``train`` call (model construction, every pass, the test evaluation; data loading excluded,
the splits are built once). Every run's results must equal the others bit for bit: final
weights, every epoch's loss and accuracy, test loss, scores and predictions, and the figures
as the report printed them; if not, the script says what differs and exits with status 1. In
full mode the printed figures are also compared with the published ones (reported, not
fatal). Last line:
``faithful ratio=<min over the entries of generic/fast> target>=2.00``.

Usage: python bench/faithful.py [--quick] [--rounds R] [--entries baseline,dropout]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

import mnist_models.training
from mnist_models.config import TrainConfig
from mnist_models.data import Splits, load_mnist, make_splits
from mnist_models.mlp.per_sample import applies
from mnist_models.mlp.trainer import MLPTrainer
from mnist_models.training import TrainResult, train
from sweeps.reported.registry import ReportedRun, printed_figures, select

ENTRIES = "baseline,dropout"
QUICK_EPOCHS = 40
_make_trainer = mnist_models.training.make_trainer


@contextmanager
def path(kind: str, built: list[Any]) -> Iterator[None]:
    """Makes ``train`` build its MLP trainer the ``kind`` way ("fast" or "generic")."""

    def make(config: TrainConfig, splits: Splits) -> Any:
        trainer = (
            MLPTrainer(config, splits, per_sample_kernel=False)
            if kind == "generic"
            else _make_trainer(config, splits)
        )
        built.append(trainer)
        return trainer

    mnist_models.training.make_trainer = make
    try:
        yield
    finally:
        mnist_models.training.make_trainer = _make_trainer


def timed_run(config: TrainConfig, splits: Splits, kind: str) -> tuple[float, TrainResult]:
    built: list[Any] = []
    with path(kind, built):
        start = time.perf_counter()
        result = train(config, splits)
        seconds = time.perf_counter() - start
    (trainer,) = built
    kernel = getattr(trainer, "_per_sample", "unknown")
    if kernel == "unknown":
        print(f"  note: cannot tell which per-sample path the {kind} trainer took")
    elif (kernel is None) != (kind == "generic"):
        raise SystemExit(
            f"faithful: the {kind} run did not take the {kind} path "
            f"(trainer per-sample kernel: {kernel!r})"
        )
    return seconds, result


def _bits(value: Any) -> bytes:
    return np.ascontiguousarray(np.asarray(value)).tobytes()


def fingerprint(result: TrainResult, style: str) -> dict[str, bytes | str]:
    """Every result a run produced, as bytes (so -0.0, +0.0 and NaN payloads all count)."""
    parts: dict[str, bytes | str] = {}
    for i, param in enumerate(result.model.parameters()):
        parts[f"weights[{i}] {param.value.shape} {param.value.dtype}"] = _bits(param.value)
    for event in result.history:
        for name in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate"):
            parts[f"epoch {event.epoch} {name}"] = _bits(np.float64(getattr(event, name)))
    parts["test loss"] = _bits(np.float64(result.test.loss))
    parts["test scores"] = _bits(result.test.scores)
    parts["test predictions"] = _bits(result.test.predictions)
    for name, text in printed_figures(result, style).items():
        parts[f"printed {name}"] = text
    return parts


def check_same(entry: str, reference: dict[str, Any], other: dict[str, Any], what: str) -> None:
    differing = [k for k in reference if reference[k] != other.get(k)]
    differing += [k for k in other if k not in reference]
    if differing:
        shown = ", ".join(differing[:8]) + (" ..." if len(differing) > 8 else "")
        raise SystemExit(
            f"faithful: {entry}: the {what} run is not bit-identical to the first fast run; "
            f"{len(differing)} of {len(reference)} results differ: {shown}"
        )


def run_entry(entry: ReportedRun, data: Any, rounds: int, epochs: int | None) -> float:
    config = entry.config if epochs is None else entry.config.replace({"epochs": epochs})
    if not applies(config):
        raise SystemExit(f"faithful: {entry.id}: the per-sample kernel does not apply to it")
    splits = make_splits(data, config.data, config.seed, dtype=config.dtype)
    mlp = config.mlp
    print(
        f"\n{entry.id} ({entry.section}): 784-{'-'.join(map(str, mlp.hidden_sizes))}-10, "
        f"{config.epochs} passes of {len(splits.y_train)} images one at a time, dropout "
        f"{config.dropout}, {mlp.dtype}, test on {len(splits.y_test)} images",
        flush=True,
    )
    seconds: dict[str, list[float]] = {"fast": [], "generic": []}
    reference: dict[str, Any] | None = None
    for round_ in range(rounds):
        order = ("fast", "generic") if round_ % 2 == 0 else ("generic", "fast")
        for kind in order:
            spent, result = timed_run(config, splits, kind)
            seconds[kind].append(spent)
            parts = fingerprint(result, entry.format)
            if reference is None:
                reference = parts
                figures = printed_figures(result, entry.format)
            else:
                check_same(entry.id, reference, parts, f"{kind} (round {round_ + 1})")
        fast, generic = seconds["fast"][-1], seconds["generic"][-1]
        print(
            f"  round {round_ + 1} ({' then '.join(order)}): fast {fast:7.2f} s  "
            f"generic {generic:7.2f} s  speed-up {generic / fast:.2f}x  (bit-identical)",
            flush=True,
        )
    fast, generic = min(seconds["fast"]), min(seconds["generic"])
    ratio = generic / fast
    of_medians = np.median(seconds["generic"]) / np.median(seconds["fast"])
    print(
        f"{entry.id}: fast min {fast:.2f} s, generic min {generic:.2f} s -> speed-up "
        f"{ratio:.2f}x (of medians {of_medians:.2f}x)"
    )
    print(f"  figures as printed: {figures}")
    if epochs is None:
        same = figures == entry.reported
        print(f"  published: {entry.reported} ({'exact' if same else 'DIFFERENT'})")
    return ratio


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_EPOCHS} passes per entry instead of 300-350"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 2; 3 if --quick)")
    parser.add_argument("--entries", default=ENTRIES, help=f"registry ids (default {ENTRIES})")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 2)
    entries = select(args.entries)
    data = load_mnist(os.environ.get("MNIST_DIR"), dataset="mnist")  # the entries' dataset
    ratios = {
        e.id: run_entry(e, data, rounds, QUICK_EPOCHS if args.quick else None) for e in entries
    }
    print()
    for name, ratio in ratios.items():
        print(f"faithful_{name} ratio={ratio:.2f} target>=2.00")
    print(f"faithful ratio={min(ratios.values()):.2f} target>=2.00")
    return 0


if __name__ == "__main__":
    sys.exit(main())
