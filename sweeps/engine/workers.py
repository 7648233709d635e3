"""Several workers on one study: K processes on this machine, or `worker` on any host.

Workers are processes, never threads: Optuna's sampler seeding and MLflow's fluent API are
not thread-safe, and numpy's BLAS and TensorFlow each want whole cores. A worker needs only
the study's name and storage: the sweep config is read from the study itself (stored when the
study was created), so a worker joining from another host cannot drift from it.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import MutableMapping
from typing import Any

import optuna

from mnist_models.data.cache import SplitsCache
from mnist_models.errors import ConfigError, MnistSweepsError
from sweeps.console import console, quiet_expected_trial_ends
from sweeps.engine.pruning import make_pruner
from sweeps.engine.recovery import DeadTrialHandler, fail_dead_local_trials
from sweeps.engine.samplers import make_sampler
from sweeps.engine.session import SweepSettings, parent_run, work
from sweeps.engine.signals import exit_code, stopping_on_signals, when_parent_dies
from sweeps.results.summary import finish
from sweeps.spec.sweep_file import SweepConfig
from sweeps.store.keys import CONFIG_ATTR, SAMPLER_ATTR, TRACKING_ATTR, parent_run_tags
from sweeps.store.proxy import proxy_lost
from sweeps.store.storage import load_existing_study, open_existing_storage
from tracking import Tracker

GPU_SHARING = {"XLA_PYTHON_CLIENT_PREALLOCATE": "false", "TF_FORCE_GPU_ALLOW_GROWTH": "true"}


def share_the_gpu(environ: MutableMapping[str, str] = os.environ) -> None:
    """Makes this worker take only the GPU memory it uses (a value the user set wins).

    K workers share one host's GPU: JAX would reserve 75% of its memory for the first process
    and TensorFlow nearly all of it, so the next worker would find none.
    """
    for name, value in GPU_SHARING.items():
        environ.setdefault(name, value)


class WorkerFailed(MnistSweepsError):
    """A worker process of ``--workers K`` exited with an error."""


def join_study(settings: SweepSettings, summarise: bool = True) -> optuna.Study:
    """Runs trials of an existing study until its budget is taken (the `worker` command).

    Args:
        settings: Study, storage and where to log; the config comes from the study.
        summarise: Update the parent run's summary and study report at the end (the
            ``--workers`` processes leave that to the command that started them).

    Raises:
        ConfigError: The storage or study does not exist, or MLflow settings are missing.
    """
    storage = settings.storage or ""
    dead_trials = DeadTrialHandler()
    optuna_storage = open_existing_storage(storage, dead_trials)
    study = load_existing_study(
        settings.study,
        storage,
        optuna_storage,
        hint="create it with `mnist-sweep sweep --study ...`",
    )
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        raise ConfigError(f"--study {settings.study!r} was not created by mnist-sweep")
    sweep = SweepConfig.from_dict(stored, source=f"study {settings.study!r}")
    sampler = study.user_attrs.get(SAMPLER_ATTR, sweep.sampler)  # the last `sweep` may change it
    sweep = dataclasses.replace(sweep, sampler=sampler)
    # The study seed, as in `sweep`: each draw is seeded by its own index in the study, so
    # workers never repeat each other's draws (sweeps.engine.samplers).
    study = optuna.load_study(
        study_name=settings.study,
        storage=optuna_storage,
        sampler=make_sampler(sweep.sampler, sweep.base.seed, sweep.space),
        pruner=make_pruner(sweep.pruner),
    )
    mlflow_attrs: dict[str, Any] = study.user_attrs.get(TRACKING_ATTR, {})
    tracking_uri = settings.tracking_uri or mlflow_attrs.get("tracking_uri")
    if tracking_uri is None and mlflow_attrs.get("redacted"):
        raise ConfigError(
            f"--tracking-uri: the study's MLflow URI {mlflow_attrs['redacted']!r} holds a "
            "password, which is never stored; pass it with --tracking-uri"
        )
    experiment = settings.experiment or mlflow_attrs.get("experiment") or settings.study
    tracker = Tracker(experiment, tracking_uri)
    dead_trials.client = tracker.client
    # The parent run's status belongs to the `sweep` command that created it: a worker uses
    # it as it is; one that finds none (another MLflow store) creates one and ends it itself.
    existing = tracker.find_runs(parent_run_tags(study.study_name))
    owned = not existing
    parent_id = existing[0] if existing else parent_run(tracker, study, sweep, storage)
    fail_dead_local_trials(study, optuna_storage, dead_trials)
    splits_for = SplitsCache(settings.data_dir)
    splits_for(sweep.base)
    status = "FAILED"
    try:
        work(
            study,
            *(optuna_storage, dead_trials, sweep, settings, tracker, parent_id, splits_for),
            show_progress=summarise,
        )
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if summarise or owned:
            finish(tracker, parent_id, study, status=status if owned else None)
    return study


def run_worker_processes(settings: SweepSettings, tracking_uri: str, experiment: str) -> None:
    """Runs ``settings.workers`` worker processes on this machine and waits for them.

    Each process pins numpy's BLAS and TensorFlow to its share of the cores.

    Raises:
        WorkerFailed: One or more workers exited with an error (the others finish first).
    """
    count = settings.workers
    threads = max(1, (os.cpu_count() or 1) // count)
    child = dataclasses.replace(
        settings, tracking_uri=tracking_uri, experiment=experiment, workers=1
    )
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_main, args=(child, threads), name=f"mnist-sweep worker {i}")
        for i in range(count)
    ]
    console.print(f"{count} worker processes, {threads} BLAS thread(s) each")
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        # Ctrl-C, SIGTERM or SIGHUP here: each worker gets one SIGTERM (they ignore the
        # terminal's Ctrl-C, so one stop reaches each exactly once), and time to close its
        # trial's run and re-queue its params; what is left after that is killed.
        for process in processes:
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + 30
        for process in processes:
            process.join(max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        raise
    failed = [(p.name, p.exitcode) for p in processes if p.exitcode != 0]
    if failed:
        raise WorkerFailed(
            "; ".join(f"{name} exited with code {code}" for name, code in failed)
            + "; re-run the same command to resume"
        )


def _worker_main(settings: SweepSettings, threads: int) -> None:
    # Before numpy's BLAS or TensorFlow start their thread pools in this process.
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = "1"
    share_the_gpu()
    from threadpoolctl import threadpool_limits

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    quiet_expected_trial_ends()
    try:
        with stopping_on_signals(interrupt=False), threadpool_limits(limits=threads):
            # A SIGKILLed sweep cannot stop its workers: each then stops itself, as on SIGTERM.
            when_parent_dies(lambda: os.kill(os.getpid(), signal.SIGTERM))
            join_study(settings, summarise=False)
    except KeyboardInterrupt as exc:
        # The trial's run is closed as KILLED; the parent reports the interrupt.
        sys.exit(exit_code(exc))
    except Exception as exc:
        # One line naming the worker, as `mnist-sweep worker` prints it (not multiprocessing's
        # traceback); the parent then reports which workers failed.
        error = exc if isinstance(exc, MnistSweepsError) else proxy_lost(exc, settings.storage)
        if error is None:
            raise
        console.print(f"{multiprocessing.current_process().name}: {error}", markup=False)
        sys.exit(1)
