"""Parallel workers on this machine: ``sweep --workers 2`` vs ``--workers 1``, trials per hour.

Real sweeps through the CLI (``python -m sweeps.cli sweep``), each in its own process with its
own study in one temporary SQLite Optuna storage and one temporary SQLite MLflow store (both
created before timing), ``--pruner none``, the packaged MLP sweep with every searched key but
the learning rate fixed by ``--set`` so that all trials cost the same, N trials per sweep:

- Python-bound: 784-32-10, batch 8 (per-step Python work dominates each trial);
- GEMM-bound: 784-1024-10, batch 256 (the matrix products dominate).

``--workers 2`` runs two worker processes, each with its BLAS (and TensorFlow) pinned to one
thread by the product; ``--workers 1`` trains in the sweep's own process with BLAS left at its
default (all cores). Trials per hour = completed trials / the span from the first trial's
start to the last trial's end, both read from the Optuna storage (``datetime_start``,
``datetime_complete``): process start-up, imports, data loading and the study set-up are
excluded from the headline. The whole command's wall time (start-up included) is printed
beside it. The variants alternate (1 2 2 1 ...) for several rounds; each variant's figure is
its best round (the shortest span). Prints both ratios (workers 2 / workers 1 trials per
hour); the line before the last is ``workers_gemm ratio=X.XX target>=0.95``, the last
``workers ratio=<Python-bound> target>=1.70``.

Usage: python bench/workers.py [--quick] [--rounds R] [--trials N]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState

from mnist_models.data import load_mnist
from tracking import Tracker

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Kind:
    name: str
    sets: tuple[str, ...]
    train_size: int
    epochs: int


def kinds(quick: bool, available: int) -> list[Kind]:
    fixed = ("dropout=0.0", "augment=false")
    size = min(6_000 if quick else 10_000, available)
    gemm_size = min(6_000 if quick else 20_000, available)
    return [
        Kind(
            "python-bound",
            ("mlp.hidden_sizes=[32]", "batch_size=8", *fixed),
            size,
            5 if quick else 10,
        ),
        Kind(
            "gemm-bound",
            ("mlp.hidden_sizes=[1024]", "batch_size=256", *fixed),
            gemm_size,
            3 if quick else 4,
        ),
    ]


@dataclass(frozen=True)
class Measured:
    completed: int
    span: float  # first trial start to last trial end, seconds
    wall: float  # the whole command, seconds

    @property
    def per_hour(self) -> float:
        return 3600 * self.completed / self.span

    @property
    def per_hour_wall(self) -> float:
        return 3600 * self.completed / self.wall


def run_sweep(
    kind: Kind, workers: int, trials: int, study: str, storage: str, mlflow: str
) -> Measured:
    command = [
        sys.executable,
        "-m",
        "sweeps.cli",
        "sweep",
        "--model",
        "mlp",
        *(arg for pair in kind.sets for arg in ("--set", pair)),
        "--epochs",
        str(kind.epochs),
        "--train-size",
        str(kind.train_size),
        "--trials",
        str(trials),
        "--pruner",
        "none",
        "--workers",
        str(workers),
        "--study",
        study,
        "--storage",
        storage,
        "--tracking-uri",
        mlflow,
    ]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
        raise SystemExit(f"workers: {' '.join(command)} exited with {done.returncode}:\n{tail}")
    finished = [
        t
        for t in optuna.load_study(study_name=study, storage=storage).get_trials(deepcopy=False)
        if t.state == TrialState.COMPLETE
    ]
    if len(finished) < trials:
        raise SystemExit(f"workers: study {study}: {len(finished)} of {trials} trials completed")
    first = min(t.datetime_start for t in finished if t.datetime_start is not None)
    last = max(t.datetime_complete for t in finished if t.datetime_complete is not None)
    return Measured(len(finished), (last - first).total_seconds(), wall)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 shorter trials per sweep, 1 round")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 2; 1 if --quick)")
    parser.add_argument("--trials", type=int, help="trials per sweep (default 8; 4 if --quick)")
    args = parser.parse_args()
    rounds = args.rounds or (1 if args.quick else 2)
    trials = args.trials or (4 if args.quick else 8)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # its store set-up lines
    available = len(load_mnist(os.environ.get("MNIST_DIR"), dataset="auto").y_train)
    print(f"{os.cpu_count()} CPU cores; {trials} trials per sweep, {rounds} round(s)")
    results: dict[tuple[str, int], list[Measured]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        storage = f"sqlite:///{Path(tmp) / 'optuna.db'}"
        mlflow = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        # Create both stores now, so that no timed command pays for their set-up.
        optuna.create_study(study_name="bench-workers-setup", storage=storage)
        Tracker("bench-workers-setup", mlflow)
        for round_ in range(rounds):
            for kind in kinds(args.quick, available):
                order = (1, 2) if round_ % 2 == 0 else (2, 1)
                for workers in order:
                    study = f"{kind.name}-w{workers}-r{round_ + 1}"
                    m = run_sweep(kind, workers, trials, study, storage, mlflow)
                    results.setdefault((kind.name, workers), []).append(m)
                    print(
                        f"  round {round_ + 1} {kind.name:>12} --workers {workers}: "
                        f"{m.completed} trials, span {m.span:6.1f} s "
                        f"({m.per_hour:6.0f} trials/h), command {m.wall:6.1f} s "
                        f"({m.per_hour_wall:6.0f} trials/h)",
                        flush=True,
                    )
    ratios: dict[str, float] = {}
    print()
    for kind in kinds(args.quick, available):
        one = max(results[(kind.name, 1)], key=lambda m: m.per_hour)
        two = max(results[(kind.name, 2)], key=lambda m: m.per_hour)
        ratios[kind.name] = two.per_hour / one.per_hour
        wall = max(m.per_hour_wall for m in results[(kind.name, 2)]) / max(
            m.per_hour_wall for m in results[(kind.name, 1)]
        )
        print(
            f"{kind.name} ({' '.join(kind.sets)}, {kind.epochs} epochs on {kind.train_size} "
            f"images): --workers 1 {one.per_hour:.0f} trials/h, --workers 2 "
            f"{two.per_hour:.0f} trials/h -> {ratios[kind.name]:.2f}x "
            f"(whole command, start-up included: {wall:.2f}x)"
        )
    print(f"workers_gemm ratio={ratios['gemm-bound']:.2f} target>=0.95")
    print(f"workers ratio={ratios['python-bound']:.2f} target>=1.70")
    return 0


if __name__ == "__main__":
    sys.exit(main())
