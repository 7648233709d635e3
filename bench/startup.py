"""Start-up of a command: `mnist-sweep --help` against importing the libraries it cannot avoid.

Every `mnist-sweep` command, every `--workers` process and every `--trial-process` trial pays
the CLI's start-up before it does anything. Its floor is importing Optuna and MLflow (every
command opens a study or a tracking store); what our own modules add on top of that is the
overhead measured here. Each round runs, in fresh interpreters, one after another:

- ours: ``python -m sweeps.cli --help`` (parses, builds every command's parser, exits);
- baseline: ``python -c "import optuna, mlflow"``;
- and, printed beside, a bare ``python -c pass``.

Prints the median wall time of each over the rounds and, last,
``startup ratio=<ours / baseline> target<=1.50``.

Usage: python bench/startup.py [--quick] [--rounds R]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 1.50
COMMANDS = {
    "mnist-sweep --help": [sys.executable, "-m", "sweeps.cli", "--help"],
    "import optuna, mlflow": [sys.executable, "-c", "import optuna, mlflow"],
    "python -c pass": [sys.executable, "-c", "pass"],
}


def _seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7; 3 if --quick)")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    if rounds < 1:
        parser.error(f"--rounds {rounds}: expected >= 1")
    for command in COMMANDS.values():  # warm the file cache: the first start reads every .pyc
        _seconds(command)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(rounds):  # interleaved, so a busy moment hits each alike
        for name, command in COMMANDS.items():
            times[name].append(_seconds(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"{name:<24} {value:6.2f} s  (median of {rounds})")
    ours, baseline = medians["mnist-sweep --help"], medians["import optuna, mlflow"]
    print(f"ours adds {ours - baseline:+.2f} s to the imports it cannot avoid")
    print(f"startup ratio={ours / baseline:.2f} target<={TARGET:.2f}")


if __name__ == "__main__":
    main()
