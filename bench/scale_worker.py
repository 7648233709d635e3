"""The worker role of ``bench/scale.py``: ``mnist-sweep worker``, instrumented and held at a
barrier (see that script's docstring for what is measured and why).

Run by ``bench/scale.py`` as ``python bench/scale_worker.py SPEC_JSON``; only the standard
library is imported at module level, so BLAS is pinned before numpy is imported.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NICE = 19  # workers' niceness: the services come first (see worker_role)
BLAS_THREADS = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1",
    "TF_NUM_INTEROP_THREADS": "1",
}


def worker_role(spec: dict[str, Any]) -> int:
    """One worker: ``mnist-sweep worker`` held at the barrier and instrumented."""
    os.environ.update(BLAS_THREADS)  # before numpy, in this process, starts its thread pool
    # The services (PostgreSQL, the proxy, the MLflow server) would each have a host of their
    # own: here they share 2 cores with W workers, so the workers yield the CPU to them. Without
    # this, 32 busy workers starve the MLflow server until its requests time out, and what is
    # measured is this machine's lack of cores, not the services' capacity.
    os.nice(NICE)
    _die_with_parent()
    stats = Stats()
    if spec["mode"] == "direct":
        from optuna.storages import RDBStorage

        # Database round trips: the cache calls these private methods of RDBStorage too.
        private = {
            "_get_trials",
            "_create_new_trial",
            "_set_trial_param",
            "_get_best_trial_id",
            "_get_stale_trial_ids",
        }
        no_database = {"get_heartbeat_interval", "get_heartbeat_stale_trial_callback"}
        _count_calls(
            RDBStorage,
            stats,
            lambda name: name in private or not (name.startswith("_") or name in no_database),
        )
    else:
        from optuna.storages import GrpcStorageProxy

        set_up = {"wait_server_ready", "close"}  # not RPCs of the storage API
        _count_calls(
            GrpcStorageProxy, stats, lambda name: not (name.startswith("_") or name in set_up)
        )
    _time_ask_and_tell(stats)
    _hold_at_barrier(Path(spec["ready"]), Path(spec["go"]), stats)

    import resource

    from sweeps.cli.main import main

    argv = ["worker", "--study", spec["study"], "--storage", spec["storage"]]
    argv += ["--trials", str(spec["trials"])]
    if spec["data_dir"]:
        argv += ["--data-dir", spec["data_dir"]]
    code = 1
    try:
        code = main(argv)
    finally:
        stats.rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        Path(spec["stats"]).write_text(json.dumps(stats.as_dict()))
    return code


class Stats:
    """What one worker measured; storage calls are split at "go" (set-up, then work)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.phase = "setup"
        self.calls = {"setup": 0, "work": 0}
        self.call_seconds = {"setup": 0.0, "work": 0.0}
        self.by_method: dict[str, int] = {}
        self.ask_ms: list[float] = []
        self.tell_ms: list[float] = []
        self.rss_kb = 0
        self.cpu = {"setup": 0.0, "work": 0.0}  # user + sys seconds of this process

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "call_seconds": self.call_seconds,
            "by_method": self.by_method,
            "ask_ms": self.ask_ms,
            "tell_ms": self.tell_ms,
            "rss_kb": self.rss_kb,
            "cpu": self.cpu,
        }


def _count_calls(cls: type, stats: Stats, counted: Callable[[str], bool]) -> None:
    """Wraps ``cls``'s own methods named by ``counted``: the outermost call of a thread counts."""
    import inspect

    local = threading.local()

    def wrap(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if getattr(local, "depth", 0):
                return method(*args, **kwargs)
            local.depth = 1
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                local.depth = 0
                with stats.lock:
                    stats.calls[stats.phase] += 1
                    stats.call_seconds[stats.phase] += elapsed
                    if stats.phase == "work":
                        stats.by_method[name] = stats.by_method.get(name, 0) + 1

        wrapper.__name__ = name
        wrapper.__wrapped__ = method  # type: ignore[attr-defined]
        return wrapper

    for name, value in list(vars(cls).items()):
        if inspect.isfunction(value) and not name.startswith("__") and counted(name):
            setattr(cls, name, wrap(name, value))


def _time_ask_and_tell(stats: Stats) -> None:
    import optuna
    import optuna.study._optimize as optimize_module

    ask = optuna.study.Study.ask

    def timed_ask(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return ask(self, *args, **kwargs)
        finally:
            stats.ask_ms.append(1000 * (time.perf_counter() - start))

    optuna.study.Study.ask = timed_ask  # type: ignore[method-assign]

    # Measurement only: `study.optimize` does not call the public `Study.tell` but this
    # internal function (imported into optuna.study._optimize); there is no public hook for
    # timing the tell of an optimize loop, so the module attribute is replaced by a timer.
    tell = optimize_module._tell_with_warning

    def timed_tell(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return tell(*args, **kwargs)
        finally:
            stats.tell_ms.append(1000 * (time.perf_counter() - start))

    optimize_module._tell_with_warning = timed_tell


def _hold_at_barrier(ready: Path, go: Path, stats: Stats) -> None:
    """``join_study`` calls ``work`` once storage, study and data are loaded: wait there."""
    import sweeps.engine.workers as workers_module

    work = workers_module.work

    def gated_work(*args: Any, **kwargs: Any) -> None:
        ready.touch()
        while not go.exists():
            time.sleep(0.02)
        with stats.lock:
            stats.phase = "work"
        stats.cpu["setup"] = _cpu_seconds()
        try:
            work(*args, **kwargs)
        finally:
            stats.cpu["work"] = _cpu_seconds() - stats.cpu["setup"]

    workers_module.work = gated_work


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def _die_with_parent() -> None:
    """A SIGTERM to this worker (a clean stop) once the bench that started it is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="bench-parent-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(worker_role(json.loads(sys.argv[1])))
