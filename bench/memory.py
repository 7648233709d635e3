"""Peak memory across the trials of an in-process CNN sweep: flat, or growing per trial?

A 20-trial sweep of the packaged CNN search space (learning rate, batch size, dropout,
augmentation; TPE seed 0, no pruning) runs through ``sweeps.engine.sweep.run_sweep`` in this
process, every trial in it (the default, no ``--trial-process``), each trial tiny (1 epoch
on a few hundred training images, filters 8/16, a 32-unit dense layer) so that it takes
seconds, logging to a temporary SQLite MLflow store (model, figures, artifacts) as a real
sweep does. A thread samples this process's resident set size (``VmRSS`` in
``/proc/self/status``) every few milliseconds; each trial's peak is the largest sample between
its Optuna ``datetime_start`` and ``datetime_complete``. Trial 1 pays one-time costs
(TensorFlow's and MLflow's first use), so it is the warm-up; the baseline is the mean peak of
trials 2-6, measured in the same run, against the mean peak of the last 5 trials. Prints
every trial's peak and end-of-trial RSS, the least-squares slope of the peaks over trials 2..N
in MB per trial, and last ``memory ratio=<last 5 / trials 2-6> target<=1.05``.

Usage: python bench/memory.py [--quick] [--trials N]   (Linux: reads /proc/self/status)
"""

from __future__ import annotations

import argparse
import array
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from mnist_models.data.cache import SplitsCache
from sweeps.engine.session import SweepSettings
from sweeps.engine.sweep import run_sweep
from sweeps.spec.sweep_file import SweepConfig

MB = 1024 * 1024
TINY = {
    "epochs": 1,
    "data.train_size": 400,
    "data.test_size": 500,
    "cnn.filters": [8, 16],
    "cnn.dense_units": 32,
}


def rss_bytes(field: str = "VmRSS") -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/self/status")


class Sampler(threading.Thread):
    """Records (time.time(), RSS bytes) every ``interval`` seconds until stopped."""

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(name="rss-sampler", daemon=True)
        self.interval = interval
        # Compact arrays: a list of tuples would itself grow the RSS by ~0.2 MB per trial.
        self.times = array.array("d")
        self.rss = array.array("q")
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.times.append(time.time())
            self.rss.append(rss_bytes())
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def between(self, start: float, end: float) -> np.ndarray:
        times = np.frombuffer(self.times, dtype=np.float64)
        return np.frombuffer(self.rss, dtype=np.int64)[(times >= start) & (times <= end)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 trials instead of 20")
    parser.add_argument("--trials", type=int, help="trials (default 20; 8 if --quick)")
    args = parser.parse_args()
    trials = args.trials or (8 if args.quick else 20)
    if trials < 6:
        raise SystemExit("memory: needs at least 6 trials (trial 1 warms up, 2-6 are the base)")
    try:
        rss_bytes()
    except OSError as exc:
        raise SystemExit(f"memory: cannot read this process's RSS: {exc}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    sweep = SweepConfig.for_model("cnn").with_overrides(
        TINY, source="bench", trials=trials, pruner="none"
    )
    sampler = Sampler()
    with tempfile.TemporaryDirectory() as tmp:
        settings = SweepSettings(
            study="bench-memory",
            storage=f"sqlite:///{Path(tmp) / 'optuna.db'}",
            tracking_uri=f"sqlite:///{Path(tmp) / 'mlflow.db'}",
            seed=0,
        )
        start_rss = rss_bytes()
        sampler.start()
        started = time.perf_counter()
        study = run_sweep(sweep, settings, SplitsCache(os.environ.get("MNIST_DIR")))
        seconds = time.perf_counter() - started
        sampler.stop()
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    if len(done) != trials:
        states = [t.state.name for t in study.trials]
        raise SystemExit(f"memory: {len(done)} of {trials} trials completed: {states}")
    print(
        f"{trials} in-process CNN trials (space: {', '.join(sweep.space.params)}; fixed: "
        f"{TINY}) in {seconds:.0f} s; RSS {start_rss / MB:.0f} MB before the sweep, "
        f"{len(sampler.times)} samples"
    )
    print(" trial  seconds  batch  augment  peak RSS MB  RSS at end MB")
    peaks = []
    for trial in done:
        assert trial.datetime_start is not None and trial.datetime_complete is not None
        start, end = trial.datetime_start.timestamp(), trial.datetime_complete.timestamp()
        inside = sampler.between(start, end)
        if len(inside) == 0:
            raise SystemExit(f"memory: no RSS sample during trial {trial.number}")
        peaks.append(inside.max() / MB)
        print(
            f"{trial.number + 1:6d}  {end - start:7.1f}  {trial.params.get('batch_size', '-'):>5}"
            f"  {trial.params.get('augment', '-')!s:>7}  {peaks[-1]:11.1f}  "
            f"{inside[-1] / MB:13.1f}"
        )
    peak = np.array(peaks)
    base, last = peak[1:6].mean(), peak[-5:].mean()
    numbers = np.arange(2, trials + 1)
    slope = np.polyfit(numbers, peak[1:], 1)[0]
    print(
        f"mean peak of trials 2-6 {base:.1f} MB, of the last 5 ({trials - 4}-{trials}) "
        f"{last:.1f} MB; slope over trials 2-{trials} {slope:+.2f} MB/trial "
        f"({slope * 100:+.0f} MB per 100 trials); process high-water mark "
        f"{rss_bytes('VmHWM') / MB:.0f} MB"
    )
    print(f"memory_slope_mb_per_trial={slope:.2f}")
    print(f"memory ratio={last / base:.2f} target<=1.05")
    return 0


if __name__ == "__main__":
    sys.exit(main())
