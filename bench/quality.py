"""How good the packaged models get: test accuracy (mean ± 95% CI over seeds) and wall time.

Each entry is a full training config (a sweep file's ``[fixed]`` table with the searched keys
at the values named here) trained on full MNIST with the seeds of ``train --repeats K``, and is
printed as one row of the "quality" table of ``bench/README.md``, next to the figure the
literature reports for that model family:

- Simard, Steinkraus & Platt (2003): a plain MLP 784-800-10 with cross-entropy reaches 98.9%
  test accuracy with affine distortions, 99.3% with elastic ones;
- the Kaggle "Introduction to CNN Keras" recipe (our CNN): 99.67% validation accuracy after
  30 augmented epochs.

Every epoch is printed to stderr as it ends (the long entries take an hour on two cores).
Usage: python bench/quality.py [--only NAME ...] [--repeats K] [--epochs N] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnist_models.callbacks import Callback, EpochResult
from mnist_models.config import TrainConfig, read_toml
from mnist_models.seeds import repeat_seeds
from mnist_models.stats import summarise
from mnist_models.training import load_splits, train

SWEEPS = Path(__file__).resolve().parent.parent / "sweeps"


@dataclass(frozen=True)
class Entry:
    """One row: a sweep file's ``[fixed]`` config with ``values`` set, and its anchor."""

    name: str
    sweep: str
    values: dict[str, Any] = field(default_factory=dict)
    anchor: str = ""

    def config(self) -> TrainConfig:
        fixed = read_toml(SWEEPS / self.sweep)["fixed"]
        return TrainConfig.from_dict(fixed, source=self.sweep).replace(
            {"data.dataset": "mnist", **self.values}, source=self.name
        )


ENTRIES = [
    Entry(
        "mlp-default",
        "mlp.toml",
        {"lr": 0.002, "batch_size": 128, "dropout": 0.2, "augment": "none"},
        "Simard 2003, 784-800-10 plain: 98.4%",
    ),
    Entry("mlp-record", "mlp-record.toml", {}, "Simard 2003, 784-800-10 elastic: 99.3%"),
    Entry(
        "cnn-30-augmented",
        "cnn.toml",
        {"epochs": 30, "augment": "affine", "lr": 0.001, "batch_size": 86, "dropout": 0.25},
        "Kaggle recipe, 30 augmented epochs: 99.67% (validation)",
    ),
]


class _Progress(Callback):
    def __init__(self, label: str) -> None:
        self.label = label

    def on_epoch_end(self, result: EpochResult) -> None:
        print(
            f"{self.label} epoch {result.epoch}: val {result.val_accuracy:.4f} "
            f"train {result.train_accuracy:.4f} lr {result.learning_rate:.2e} "
            f"{result.seconds:.1f}s",
            file=sys.stderr,
            flush=True,
        )


def measure(entry: Entry, repeats: int, epochs: int | None) -> dict[str, Any]:
    """Trains ``entry`` once per repeat seed; returns its row's figures."""
    config = entry.config()
    if epochs is not None:
        config = config.replace({"epochs": epochs})
    accuracies, seconds = [], []
    for seed in repeat_seeds(config.seed, repeats):
        run = config.replace({"seed": seed})
        result = train(run, load_splits(run, os.environ.get("MNIST_DIR")), [_Progress(entry.name)])
        accuracies.append(result.test.accuracy)
        seconds.append(result.seconds)
        print(f"{entry.name} seed {seed}: test {result.test.accuracy:.4f}", file=sys.stderr)
    summary = summarise(accuracies)
    return {
        "name": entry.name,
        "config": f"sweeps/{entry.sweep} " + " ".join(f"{k}={v}" for k, v in entry.values.items()),
        "model": describe(config),
        "epochs": config.epochs,
        "minutes": sum(seconds) / len(seconds) / 60,
        "accuracy": summary.text(),
        "accuracies": accuracies,
        "anchor": entry.anchor,
    }


def describe(config: TrainConfig) -> str:
    if config.model == "mlp":
        widths = "-".join(str(w) for w in (784, *config.mlp.hidden_sizes, 10))
        return f"numpy MLP {widths}, augment={config.augment}"
    return f"Keras CNN, augment={config.augment}"


def main() -> None:
    names = [entry.name for entry in ENTRIES]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=names, default=names, help="entries to run")
    parser.add_argument("--repeats", type=int, default=3, help="seeds per entry (default 3)")
    parser.add_argument("--epochs", type=int, help="override every entry's epochs (a rehearsal)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    rows = [
        measure(entry, args.repeats, args.epochs) for entry in ENTRIES if entry.name in args.only
    ]
    print("| entry | model | config | epochs | minutes per run | test accuracy | anchor |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['name']} | {row['model']} | {row['config']} | {row['epochs']} | "
            f"{row['minutes']:.1f} | {row['accuracy']} (n={len(row['accuracies'])}) | "
            f"{row['anchor']} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
