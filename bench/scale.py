"""Many workers on one study: PostgreSQL directly vs through Optuna's gRPC storage proxy.

One study is shared by W worker processes, each running the exact code path of
``mnist-sweep worker`` (``sweeps.cli.main.main(["worker", ...])``), in two modes:

- direct: every worker opens the PostgreSQL URL itself (its own SQLAlchemy pool, trial
  heartbeats every 10 s);
- proxy: one ``mnist-sweep storage-proxy --storage <PostgreSQL URL>`` process holds the
  database connections (and a cache) and the workers pass ``--storage grpc://127.0.0.1:PORT``.

Both modes log to one lean ``mlflow server`` (``tracking.server.MlflowServer``) whose backend
store is a second PostgreSQL database, with proxied artifacts and a pool of 10 + 20 connections
(MLflow's default, 5 + 10 with a 30 s wait, lost runs at W = 32); both databases are created fresh
for the run and dropped at the end. Each configuration (W, mode, round) has its own study,
created by the real CLI (``sweep --trials 1``: one cheap trial, trial 0, which also creates
the MLflow parent run). All studies are created up front, 4 commands at a time, directly on
the database (creating is not measured; it only moved out of the configurations' time). Then,
per configuration, W workers are started with ``--trials N+1`` and held at a barrier: the
function the ``worker`` command calls once its imports are done, its storage is open, the
study and the data are loaded (``sweeps.engine.workers.work``) is replaced by one that writes
a "ready" file and waits for a "go" file, which this script creates once all W are ready. The
trials are tiny (a 784-16-10 MLP, 1 epoch on 500 images, 200 test images), so what is
measured is the harness's load on the storage and the tracking server, not training.

Figures, per configuration (N trials made by the workers; trial 0 is left out):

- trials/min: N / the span from the first worker trial's ``datetime_start`` to the last
  trial's ``datetime_complete`` (read from the Optuna storage): start-up, imports, data
  loading and each worker's closing study report are excluded.
- storage calls/trial: the calls the workers made to the storage they really talk to, after
  "go", summed over the workers, / N. Direct: a call is a database round trip, i.e. a call
  into ``optuna.storages.RDBStorage`` below Optuna's in-process ``_CachedStorage`` (which
  ``load_study`` wraps around it and which answers some reads itself): its public methods
  and the private ones the cache calls (``_get_trials``, ``_create_new_trial``, ...), the
  heartbeat thread's ``record_heartbeat`` included, counting only the outermost call of a
  thread (some of these methods call others). Proxy: a call is one method of
  ``optuna.storages.GrpcStorageProxy``, i.e. one RPC (it has no heartbeats). The mean time of
  a call (client side, waiting included) is printed beside it, and the calls of a worker's
  set-up (before "go") separately.
- PostgreSQL connections: the peak number of connections open (idle ones included) to the
  Optuna database and to the MLflow database while the workers run, from ``pg_stat_activity``
  polled every 0.1 s. The MLflow server's pool lives across configurations.
- ask / tell p50 and p99 (ms), pooled over the workers: ``Study.ask`` as ``study.optimize``
  calls it (sampling included), and Optuna's internal ``_tell_with_warning``, which
  ``study.optimize`` calls instead of the public ``Study.tell`` (state, value and the storage
  writes of a finished trial).
- worker peak RSS (``ru_maxrss``), mean over the workers; worker CPU (user + system) of the
  set-up, mean per worker, and of the trial loop, summed over the workers, per trial.
- the configuration's wall time by phase (proxy start, workers ready, workers exited, ...).

After each configuration the study must hold exactly N+1 COMPLETE non-surplus trials with
unique numbers, one FINISHED MLflow run of role ``trial`` per trial and one parent run of role
``study``; a failed check is printed and the script exits non-zero at the end. Distinct
warning and error lines of the workers' logs are printed as notes.

Order: for each W, direct then proxy; the largest W runs a second round in the reverse order
(proxy then direct) and each mode keeps its best throughput, to cut the drift of a shared
machine. The last line is ``scale ratio=<proxy / direct trials/min at the largest W>
target>=1.00``. Full: W in 4, 16, 32, N = max(64, 4 W). ``--quick``: W in 2, 4, N = 16, one
round (about 100 s): every worker costs about 1.4 s of the 2-core machine to start and as
much to end (its closing study report), and a trial about 0.6 s whatever W, so W = 8 twice
plus W = 4 twice does not fit in two minutes at any N.

What bounds W here: memory, about 500 MB per worker (a worker holds full MNIST and the
imports of Optuna, MLflow and numpy; 400-480 MB peak RSS measured), so a W whose workers do
not fit in ``MemAvailable`` is skipped; 2 cores, which W single-threaded workers share with
PostgreSQL, the MLflow server and the proxy (the workers' BLAS is pinned to one thread each),
so trials/min measures contention, not parallel speed-up. The workers run at niceness 19, so
the services get the CPU they ask for first, as on hosts of their own (without it, 32 busy
workers starved the one-process MLflow server until its requests timed out: runs were lost or
left RUNNING). In direct mode, PostgreSQL's
``max_connections`` (100 by default): each worker holds two connections (its trial loop and
its heartbeat thread).

Usage: python bench/scale.py [--quick] [--workers 4,16,32] [--trials N]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scale_services import (
    ADMIN_URL,
    ConnectionPoller,
    mem_available_mb,
    pg_url,
    service_cpu,
    stop_all,
    storage_proxy,
    tail,
)
from scale_worker import BLAS_THREADS

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.00
FULL_WORKERS = [4, 16, 32]
QUICK_WORKERS = [2, 4]  # W = 4 and 8 take over 3 minutes (see the docstring)
QUICK_TRIALS = 16
POOL = {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "10", "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "20"}
WORKER_MB = 500  # a worker's peak RSS (~480 MB measured) with some room
SWEEP_FLAGS = (
    *("--trials", "1", "--model", "mlp", "--pruner", "none"),
    *("--train-size", "500", "--epochs", "1"),
    *("--set", "data.test_size=200", "--set", "mlp.hidden_sizes=[16]"),
)


# --- main role --------------------------------------------------------------------------------


@dataclass
class Figures:
    workers: int
    mode: str
    round: int
    trials: int
    span: float
    calls: int
    call_seconds: float
    setup_calls: int
    pg_optuna: int
    pg_mlflow: int
    ask: tuple[float, float]
    tell: tuple[float, float]
    rss_mb: float
    cpu_setup: float  # CPU seconds of a worker up to "go", mean
    cpu_work: float  # CPU seconds of the workers from "go" to the end of their trial loop, summed
    by_method: dict[str, int]  # storage calls after "go", summed over the workers
    surplus: int
    phases: dict[str, float]  # seconds from the end of the one before to the end of each
    service_cpu: dict[str, float]  # CPU seconds of each service from "go" to the last exit

    def service_per_trial_ms(self, name: str) -> float:
        return 1000 * self.service_cpu.get(name, 0.0) / self.trials

    @property
    def wall(self) -> float:
        return sum(self.phases.values())

    @property
    def per_min(self) -> float:
        return 60 * self.trials / self.span

    @property
    def calls_per_trial(self) -> float:
        return self.calls / self.trials

    @property
    def call_ms(self) -> float:
        return 1000 * self.call_seconds / max(self.calls, 1)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def study_name(workers: int, mode: str, round_: int) -> str:
    return f"scale-{mode}-w{workers}" + (f"-r{round_}" if round_ > 1 else "")


def create_studies(
    studies: list[str], storage: str, tracking_uri: str, tmp: Path, at_once: int = 4
) -> None:
    """Creates each study with the real CLI (``sweep --trials 1``), ``at_once`` in parallel.

    Up front, directly on the database, for every configuration: not measured, and a
    configuration then starts with its workers at once.
    """
    pending = list(studies)
    running: list[tuple[str, subprocess.Popen[bytes]]] = []
    try:
        while pending or running:
            while pending and len(running) < at_once:
                study = pending.pop(0)
                folder = tmp / study
                folder.mkdir()
                command = [sys.executable, "-m", "sweeps.cli", "sweep", "--study", study]
                command += ["--storage", storage, "--tracking-uri", tracking_uri, *SWEEP_FLAGS]
                with open(folder / "sweep.log", "wb") as log:
                    process = subprocess.Popen(
                        command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
                    )
                running.append((study, process))
            study, process = running.pop(0)
            if process.wait(300) != 0:
                raise RuntimeError(
                    f"creating study {study}: `mnist-sweep sweep` exited with "
                    f"{process.returncode}:\n{tail(tmp / study / 'sweep.log')}"
                )
    finally:
        for _, process in running:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()


def run_workers(
    count: int,
    spec: dict[str, Any],
    folder: Path,
    poller: ConnectionPoller,
    marks: dict[str, float],
    services: dict[str, int],
    cpu: dict[str, float],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Starts ``count`` workers, releases them together, waits; returns their stats and errors."""
    go = folder / "go"
    env = {**os.environ, **BLAS_THREADS}
    processes: list[subprocess.Popen[bytes]] = []
    problems: list[str] = []
    try:
        for i in range(count):
            own = {
                **spec,
                "ready": str(folder / f"ready-{i}"),
                "go": str(go),
                "stats": str(folder / f"stats-{i}.json"),
            }
            with open(folder / f"worker-{i}.log", "wb") as log:
                processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            str(Path(__file__).resolve().with_name("scale_worker.py")),
                            json.dumps(own),
                        ],
                        cwd=ROOT,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # Ctrl-C reaches this script; it stops them
                    )
                )
        deadline = time.monotonic() + 60 + 10 * count
        while not all((folder / f"ready-{i}").exists() for i in range(count)):
            dead = [i for i, p in enumerate(processes) if p.poll() is not None]
            if dead:
                i = dead[0]
                raise RuntimeError(
                    f"worker {i} exited with {processes[i].returncode} before it was ready:\n"
                    f"{tail(folder / f'worker-{i}.log')}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"{count} workers not all ready within {60 + 10 * count} s")
            time.sleep(0.05)
        before = service_cpu(services)
        go.touch()
        marks["ready"] = time.perf_counter()
        deadline = time.monotonic() + 600 + 20 * spec["trials"]
        for i, process in enumerate(processes):
            try:
                process.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise RuntimeError(f"worker {i} still running after the time allowed") from None
            if process.returncode != 0:
                problems.append(
                    f"worker {i} exited with {process.returncode}:\n"
                    f"{tail(folder / f'worker-{i}.log')}"
                )
        marks["exited"] = time.perf_counter()
        after = service_cpu(services)
        cpu.update({name: after[name] - before[name] for name in after})
    finally:
        stop_all(processes, grace=20)
    stats = []
    for i in range(count):
        path = folder / f"stats-{i}.json"
        if path.exists():
            stats.append(json.loads(path.read_text()))
        else:
            problems.append(f"worker {i} wrote no stats")
    if poller.error is not None:
        problems.append(f"pg_stat_activity poller failed: {poller.error}")
    return stats, problems


def notable_lines(folder: Path, count: int, limit: int = 5) -> list[str]:
    """Distinct warning and error lines of the workers' logs (numbers masked), first few."""
    import re

    seen: dict[str, str] = {}
    for i in range(count):
        with contextlib.suppress(OSError):
            for line in (folder / f"worker-{i}.log").read_text(errors="replace").splitlines():
                if re.search(r"warning|error|traceback|exception", line, re.IGNORECASE):
                    seen.setdefault(
                        re.sub(r"\d+", "N", line.strip()), f"worker {i}: {line.strip()}"
                    )
    lines = list(seen.values())
    return lines[:limit] + ([f"... {len(lines) - limit} more kinds"] if len(lines) > limit else [])


def runs_wrong(by_trial: dict[str, list[str]], wanted: dict[str, list[str]]) -> str:
    """What differs, by kind, with the trial numbers: ``8 RUNNING (trials 103, 109, ...)``."""

    def numbers(keys: list[str]) -> str:
        ordered = sorted(keys, key=lambda k: int(k) if k.isdigit() else -1)
        return ", ".join(ordered[:8]) + (", ..." if len(ordered) > 8 else "")

    kinds: dict[str, list[str]] = {}
    for trial in wanted.keys() - by_trial.keys():
        kinds.setdefault("no run", []).append(trial)
    for trial, statuses in by_trial.items():
        if trial not in wanted:
            kinds.setdefault("run of no trial", []).append(trial)
        elif len(statuses) > 1:
            kinds.setdefault("several runs", []).append(trial)
        elif statuses != ["FINISHED"]:
            kinds.setdefault(statuses[0], []).append(trial)
    return "; ".join(
        f"{len(keys)} {kind} (trials {numbers(keys)})" for kind, keys in sorted(kinds.items())
    )


def check_study(
    study_name: str, database_url: str, tracking_uri: str, expected: int
) -> tuple[list[Any], int, list[str]]:
    """Reads the study straight from PostgreSQL: its real trials, how many surplus ones, and
    what is wrong."""
    import optuna
    from mlflow import MlflowClient
    from optuna.trial import TrialState

    from sweeps.store.keys import SURPLUS_ATTR, TRIAL_TAG
    from tracking.tags import ROLE_TAG, STUDY_ROLE, TRIAL_ROLE

    storage = optuna.storages.RDBStorage(database_url)
    try:
        trials = optuna.load_study(study_name=study_name, storage=storage).get_trials()
    finally:
        storage.remove_session()
        storage.engine.dispose()  # no idle connection of ours in the next configuration's count
    problems = []
    numbers = [t.number for t in trials]
    if len(set(numbers)) != len(numbers):
        problems.append(f"duplicate trial numbers: {sorted(numbers)}")
    real = [t for t in trials if not t.user_attrs.get(SURPLUS_ATTR)]
    states = [t.state.name for t in real]
    if len(real) != expected or any(t.state != TrialState.COMPLETE for t in real):
        problems.append(f"expected {expected} COMPLETE trials, found {len(real)}: {states}")
    client = MlflowClient(tracking_uri)
    experiment = client.get_experiment_by_name(study_name)
    if experiment is None:
        problems.append(f"no MLflow experiment {study_name!r}")
        return real, len(trials) - len(real), problems
    runs = client.search_runs(
        [experiment.experiment_id], f"tags.`{ROLE_TAG}` = '{TRIAL_ROLE}'", max_results=10_000
    )
    by_trial: dict[str, list[str]] = {}
    for run in runs:
        by_trial.setdefault(run.data.tags.get(TRIAL_TAG, "?"), []).append(run.info.status)
    wanted = {str(t.number): ["FINISHED"] for t in real}
    if by_trial != wanted:
        problems.append(
            f"one FINISHED MLflow trial run per trial: {len(runs)} runs for {len(wanted)} "
            f"trials; {runs_wrong(by_trial, wanted)}"
        )
    parents = client.search_runs([experiment.experiment_id], f"tags.`{ROLE_TAG}` = '{STUDY_ROLE}'")
    if len(parents) != 1:
        problems.append(f"expected one parent run (role {STUDY_ROLE!r}), found {len(parents)}")
    return real, len(trials) - len(real), problems


def run_configuration(
    workers: int,
    mode: str,
    round_: int,
    trials: int,
    databases: dict[str, str],
    tracking_uri: str,
    tmp: Path,
    server_group: int,
) -> tuple[Figures | None, list[str]]:
    study = study_name(workers, mode, round_)
    folder = tmp / study
    database_url = pg_url(databases["optuna"])
    started = time.perf_counter()
    marks = {"start": started}
    services = {"mlflow server": server_group}
    cpu: dict[str, float] = {}
    with contextlib.ExitStack() as stack:
        url = database_url
        if mode == "proxy":
            url, services["proxy"] = stack.enter_context(storage_proxy(database_url, folder))
            marks["proxy"] = time.perf_counter()
        spec = {
            "mode": mode,
            "study": study,
            "storage": url,
            "trials": trials + 1,
            "data_dir": os.environ.get("MNIST_DIR"),
        }
        poller = ConnectionPoller(list(databases.values()))
        with poller.polling():
            stats, problems = run_workers(workers, spec, folder, poller, marks, services, cpu)
    marks["stopped"] = time.perf_counter()
    real, surplus, check_problems = check_study(study, database_url, tracking_uri, trials + 1)
    marks["checked"] = time.perf_counter()
    for line in notable_lines(folder, workers):
        print(f"  note: {line[:300]}", flush=True)
    names = list(marks)
    phases = {b: marks[b] - marks[a] for a, b in itertools.pairwise(names)}
    problems += check_problems
    made = [t for t in real if t.number != 0 and t.datetime_complete is not None]
    if not made or not stats:
        return None, problems or ["no trials made by the workers"]
    first = min(t.datetime_start for t in made)
    last = max(t.datetime_complete for t in made)
    ask = [v for s in stats for v in s["ask_ms"]]
    tell = [v for s in stats for v in s["tell_ms"]]
    figures = Figures(
        workers=workers,
        mode=mode,
        round=round_,
        trials=len(made),
        span=(last - first).total_seconds(),
        calls=sum(s["calls"]["work"] for s in stats),
        call_seconds=sum(s["call_seconds"]["work"] for s in stats),
        setup_calls=sum(s["calls"]["setup"] for s in stats),
        pg_optuna=poller.peak[databases["optuna"]],
        pg_mlflow=poller.peak[databases["mlflow"]],
        ask=(percentile(ask, 0.5), percentile(ask, 0.99)),
        tell=(percentile(tell, 0.5), percentile(tell, 0.99)),
        rss_mb=sum(s["rss_kb"] for s in stats) / len(stats) / 1024,
        cpu_setup=sum(s["cpu"]["setup"] for s in stats) / len(stats),
        cpu_work=sum(s["cpu"]["work"] for s in stats),
        by_method={
            name: sum(s["by_method"].get(name, 0) for s in stats)
            for name in sorted({name for s in stats for name in s["by_method"]})
        },
        surplus=surplus,
        phases=phases,
        service_cpu=cpu,
    )
    return figures, problems


def describe(f: Figures) -> str:
    return (
        f"W={f.workers:<3} {f.mode:<6} round {f.round}: {f.trials} trials in {f.span:6.1f} s "
        f"({f.per_min:6.1f} trials/min); {f.calls_per_trial:5.1f} storage calls/trial "
        f"({f.call_ms:5.1f} ms each), {f.setup_calls / f.workers:4.1f}/worker at set-up; "
        f"PostgreSQL connections optuna {f.pg_optuna}, mlflow {f.pg_mlflow}; "
        f"ask p50/p99 {f.ask[0]:.1f}/{f.ask[1]:.1f} ms, tell {f.tell[0]:.1f}/{f.tell[1]:.1f} ms; "
        f"RSS {f.rss_mb:.0f} MB; worker CPU {f.cpu_setup:.1f} s at set-up, "
        f"{f.cpu_work / f.trials:.2f} s/trial; services' CPU per trial: "
        + ", ".join(f"{name} {f.service_per_trial_ms(name):.0f} ms" for name in f.service_cpu)
        + f"; {f.surplus} surplus; {f.wall:.1f} s in all ("
        + ", ".join(f"{name} {seconds:.1f}" for name, seconds in f.phases.items())
        + ")"
    )


def table(best: dict[tuple[int, str], Figures]) -> list[str]:
    header = (
        f"{'W':>3} {'mode':<6} {'trials/min':>10} {'calls/trial':>11} {'ms/call':>7} "
        f"{'PG optuna':>9} {'PG mlflow':>9} {'ask p50/p99 ms':>15} {'tell p50/p99 ms':>15} "
        f"{'RSS MB':>6} {'CPU ms/trial: PG':>16} {'MLflow':>6} {'proxy':>5} {'proxy/direct':>12}"
    )
    rows = [header]
    for (workers, mode), f in sorted(best.items(), key=lambda item: (item[0][0], item[0][1])):
        other = best.get((workers, "direct"))
        ratio = f"{f.per_min / other.per_min:.2f}" if mode == "proxy" and other else ""
        proxy_ms = f"{f.service_per_trial_ms('proxy'):.0f}" if mode == "proxy" else ""
        rows.append(
            f"{workers:>3} {mode:<6} {f.per_min:>10.1f} {f.calls_per_trial:>11.1f} "
            f"{f.call_ms:>7.1f} {f.pg_optuna:>9} {f.pg_mlflow:>9} "
            f"{f'{f.ask[0]:.1f}/{f.ask[1]:.1f}':>15} {f'{f.tell[0]:.1f}/{f.tell[1]:.1f}':>15} "
            f"{f.rss_mb:>6.0f} {f.service_per_trial_ms('postgresql'):>16.0f} "
            f"{f.service_per_trial_ms('mlflow server'):>6.0f} "
            f"{proxy_ms:>5} {ratio:>12}"
        )
    return rows


def plan(worker_counts: list[int], rounds_at_largest: int) -> list[tuple[int, str, int]]:
    """(W, mode, round): each W direct then proxy; the largest W again in reverse order."""
    steps = [(w, mode, 1) for w in worker_counts for mode in ("direct", "proxy")]
    largest = max(worker_counts)
    for round_ in range(2, rounds_at_largest + 1):
        order = ("proxy", "direct") if round_ % 2 == 0 else ("direct", "proxy")
        steps += [(largest, mode, round_) for mode in order]
    return steps


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def bench(args: argparse.Namespace) -> int:
    import psycopg
    from psycopg import sql

    worker_counts = args.workers or (QUICK_WORKERS if args.quick else FULL_WORKERS)
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            max_connections = admin.execute("SHOW max_connections").fetchone()
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"scale: PostgreSQL is not reachable at {ADMIN_URL}: {first}", file=sys.stderr)
        return 1
    import optuna

    from tracking.server import MlflowServer

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    prefix = f"bench_scale_{os.getpid()}_{secrets.token_hex(3)}"
    databases = {"optuna": f"{prefix}_optuna", "mlflow": f"{prefix}_mlflow"}
    print(
        f"{os.cpu_count()} CPU cores, {mem_available_mb() / 1024:.1f} GiB available, "
        f"PostgreSQL max_connections {max_connections[0] if max_connections else '?'}; "
        f"{args.trials} worker trials per configuration, W in {worker_counts}",
        flush=True,
    )
    results: list[Figures] = []
    failures: list[str] = []
    created: list[str] = []
    started = time.perf_counter()
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            for name in databases.values():
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                created.append(name)
        with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp_name:
            tmp = Path(tmp_name)
            # The server's SQLAlchemy pool, sized for W busy clients (its default, 5 + 10 with a
            # 30 s wait, lost runs at W = 32: bench/README.md). 10 + 20 leaves room under
            # PostgreSQL's 100 connections for 32 direct workers (64).
            for name, value in POOL.items():
                os.environ.setdefault(name, value)  # the server inherits them; a user's win
            server = MlflowServer(
                pg_url(databases["mlflow"]), tmp / "artifacts", log_file=tmp / "mlflow.log"
            )
            with server:
                print(
                    f"mlflow server ready after {time.perf_counter() - started:.1f} s", flush=True
                )
                server_group = server.pid
                assert server_group is not None  # started
                steps = plan(worker_counts, 1 if args.quick else 2)
                # Optuna's tables first: sweeps creating them at once on an empty database
                # collide (UniqueViolation on pg_type), so the parallel creations find them.
                schema = optuna.storages.RDBStorage(pg_url(databases["optuna"]))
                schema.engine.dispose()
                create_studies(
                    [study_name(*step) for step in steps],
                    pg_url(databases["optuna"]),
                    server.url,
                    tmp,
                )
                print(
                    f"{len(steps)} studies created after {time.perf_counter() - started:.1f} s",
                    flush=True,
                )
                skipped: set[int] = set()
                for workers, mode, round_ in steps:
                    if workers in skipped:
                        continue
                    available = mem_available_mb()
                    if workers * WORKER_MB > available:
                        skipped.add(workers)
                        print(
                            f"W={workers}: skipped, {workers} workers x ~{WORKER_MB} MB > "
                            f"{available:.0f} MB available",
                            flush=True,
                        )
                        continue
                    figures, problems = run_configuration(
                        workers, mode, round_, args.trials, databases, server.url, tmp, server_group
                    )
                    for problem in problems:
                        failures.append(f"W={workers} {mode} round {round_}: {problem}")
                        print(f"W={workers:<3} {mode:<6} round {round_}: FAILED: {problem}")
                    if figures is not None:
                        results.append(figures)
                        print(describe(figures), flush=True)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            for name in created:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
    print(f"all configurations: {time.perf_counter() - started:.0f} s")
    best: dict[tuple[int, str], Figures] = {}
    for f in results:
        key = (f.workers, f.mode)
        if key not in best or f.per_min > best[key].per_min:
            best[key] = f
    measured = [w for w in worker_counts if (w, "direct") in best and (w, "proxy") in best]
    print()
    print("\n".join(table(best)))
    if failures:
        print(f"{len(failures)} check(s) failed:")
        for failure in failures:
            print(f"  {failure}")
    if not measured:
        print("scale: no W measured in both modes", file=sys.stderr)
        return 1
    largest = max(measured)
    for mode in ("direct", "proxy"):
        f = best[(largest, mode)]
        calls = sorted(f.by_method.items(), key=lambda item: -item[1])
        print(
            f"W={largest} {mode} storage calls per trial: "
            + ", ".join(f"{name} {count / f.trials:.1f}" for name, count in calls)
        )
    ratio = best[(largest, "proxy")].per_min / best[(largest, "direct")].per_min
    print(f"scale ratio={ratio:.2f} target>={TARGET:.2f}", flush=True)
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="W in 2,4, 16 trials, one round")
    parser.add_argument(
        "--workers",
        type=lambda text: sorted({int(w) for w in text.split(",")}),
        help="comma-separated worker counts (default 4,16,32; 2,4 if --quick)",
    )
    parser.add_argument(
        "--trials",
        type=int,
        help="worker trials per configuration (default max(64, 4W); 16 if --quick)",
    )
    args = parser.parse_args()
    if args.workers is not None and (not args.workers or min(args.workers) < 1):
        parser.error("--workers: expected positive counts")
    if args.trials is None:
        counts = args.workers or (QUICK_WORKERS if args.quick else FULL_WORKERS)
        args.trials = QUICK_TRIALS if args.quick else max(64, 4 * max(counts))
    if args.trials < 1:
        parser.error(f"--trials {args.trials}: expected >= 1")
    for signum in (signal.SIGTERM, signal.SIGHUP):  # clean up as for Ctrl-C
        signal.signal(signum, _raise_interrupt)
    try:
        return bench(args)
    except RuntimeError as exc:  # a command or process of the set-up failed: nothing measured
        print(f"scale: could not measure: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("scale: interrupted; every process it started is stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
