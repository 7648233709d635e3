"""Pruning's saving: the same study with and without a pruner, measured in one run.

Both studies use the packaged MLP sweep, the same sampler seed, the same number of trials and
the same repeats per trial (``--repeats K``: each trial trains K times on common seeds and its
value is their mean; epochs are then counted over all repeats); only the pruner differs.
Prints, for each, the epochs trained in total, the wall time and the best validation accuracy
(the best mean with repeats), then the ratio of epochs (target >= 2x fewer with pruning) and
the loss in best value (target <= 0.1 accuracy points). The last line is
``pruning ratio=<epochs without / epochs with> target>=2.00``.

Usage: python bench/pruning.py [--quick] [--pruner median|hyperband|wilcoxon] [--trials N]
       [--repeats K]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import optuna

from mnist_models.data.cache import SplitsCache
from sweeps.engine.session import SweepSettings
from sweeps.engine.sweep import run_sweep
from sweeps.spec.sweep_file import PRUNERS, SweepConfig


def one_study(sweep: SweepConfig, pruner: str, folder: Path, splits: SplitsCache) -> dict:
    settings = SweepSettings(
        study=f"bench-{pruner}",
        storage=f"sqlite:///{folder / 'optuna.db'}",
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}",
        seed=0,
    )
    started = time.perf_counter()
    study = run_sweep(sweep.with_overrides({}, pruner=pruner), settings, splits)
    seconds = time.perf_counter() - started
    epochs = sum(int(t.user_attrs.get("epochs_trained", 0)) for t in study.trials)
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return {"epochs": epochs, "seconds": seconds, "best": study.best_value, "pruned": pruned}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="12 trials on 10,000 images")
    parser.add_argument("--pruner", default="median", choices=[p for p in PRUNERS if p != "none"])
    parser.add_argument(
        "--repeats", type=int, default=1, help="trainings per trial (wilcoxon needs >= 4)"
    )
    parser.add_argument("--trials", type=int, help="default: the sweep file's (20), 12 if --quick")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sweep = SweepConfig.for_model("mlp")
    overrides = {"data.train_size": 10000} if args.quick else {}
    trials = args.trials or (12 if args.quick else sweep.trials)
    sweep = sweep.with_overrides(overrides, trials=trials, repeats=args.repeats)
    splits = SplitsCache(os.environ.get("MNIST_DIR"))
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for pruner in ("none", args.pruner):
            folder = Path(tmp) / pruner
            folder.mkdir()
            results[pruner] = one_study(sweep, pruner, folder, splits)
    print(
        f"\n{trials} trials of {sweep.base.epochs} epochs x {args.repeats} repeats, TPE seed 0, "
        "same data"
    )
    for pruner, r in results.items():
        print(
            f"{pruner:>9}: {r['epochs']:5d} epochs  {r['seconds']:7.1f} s  best val acc "
            f"{r['best']:.4f}  ({r['pruned']} pruned)"
        )
    base, pruned = results["none"], results[args.pruner]
    loss_points = 100 * (base["best"] - pruned["best"])
    print(f"wall time ratio {base['seconds'] / pruned['seconds']:.2f}x")
    print(f"best value lost to pruning: {loss_points:+.2f} accuracy points (target <= 0.10)")
    print(f"pruning ratio={base['epochs'] / pruned['epochs']:.2f} target>=2.00")


if __name__ == "__main__":
    main()
