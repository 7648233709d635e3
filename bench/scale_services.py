"""The services ``bench/scale.py`` runs and watches: the storage proxy, PostgreSQL's
connections (``pg_stat_activity``), each service's CPU time (/proc), and stopping process
groups."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _cpu_of(stat: str) -> tuple[str, int, float]:
    """(command name, process group, CPU seconds of it and its reaped children) of a
    /proc/PID/stat line."""
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return name, int(fields[2]), ticks / os.sysconf("SC_CLK_TCK")


def service_cpu(groups: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by PostgreSQL (every ``postgres`` process; a backend that has
    exited is counted in the postmaster's reaped-children time) and by each process group of
    ``groups`` (the MLflow server's, the proxy's)."""
    totals = dict.fromkeys(["postgresql", *groups], 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, group, seconds = _cpu_of((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        if name == "postgres":
            totals["postgresql"] += seconds
        for service, leader in groups.items():
            if group == leader:
                totals[service] += seconds
    return totals


def mem_available_mb() -> float:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


def pg_url(database: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{database}"


class ConnectionPoller(threading.Thread):
    """Polls ``pg_stat_activity`` on its own connection; keeps the peak per database."""

    QUERY = (
        "SELECT datname, count(*) FROM pg_stat_activity "
        "WHERE pid <> pg_backend_pid() GROUP BY datname"
    )

    def __init__(self, databases: list[str]) -> None:
        super().__init__(name="pg-poller", daemon=True)
        self.peak = dict.fromkeys(databases, 0)
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        import psycopg

        try:
            with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
                while True:
                    for name, count in conn.execute(self.QUERY).fetchall():
                        if name in self.peak:
                            self.peak[name] = max(self.peak[name], int(count))
                    if self.stopping.wait(0.1):
                        return
        except Exception as exc:  # reported by the caller
            self.error = exc

    @contextlib.contextmanager
    def polling(self) -> Iterator[ConnectionPoller]:
        self.start()
        try:
            yield self
        finally:
            self.stopping.set()
            self.join(5)


def stop_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM to ``process``'s group, SIGKILL to what is left after ``grace`` seconds."""
    stop_all([process], grace)


def stop_all(processes: list[subprocess.Popen[bytes]], grace: float) -> None:
    """SIGTERM to each process's group (all signalled first), SIGKILL to what is left after
    one shared ``grace`` period."""
    for process in processes:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(max(0.1, deadline - time.monotonic()))
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return f"(no {path.name})"
    return "\n".join("    " + line for line in text[-lines:])


@contextlib.contextmanager
def storage_proxy(database_url: str, folder: Path) -> Iterator[tuple[str, int]]:
    """``mnist-sweep storage-proxy`` in front of ``database_url``; yields its grpc:// URL and
    its process group."""
    from tracking.lifeline import lifeline_command
    from tracking.server import free_port

    port = free_port()
    log = folder / "storage-proxy.log"
    command = [sys.executable, "-m", "sweeps.cli", "storage-proxy"]
    command += ["--storage", database_url, "--port", str(port)]
    with open(log, "wb") as out:
        # Its own group, led by a lifeline that stops it if this process dies unannounced.
        process = subprocess.Popen(
            lifeline_command(command),
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "at grpc://" not in log.read_text(errors="replace"):
            if process.poll() is not None:
                raise RuntimeError(f"storage proxy exited with {process.returncode}:\n{tail(log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"storage proxy not ready within 60 s:\n{tail(log)}")
            time.sleep(0.05)
        yield f"grpc://127.0.0.1:{port}", process.pid
    finally:
        stop_group(process, grace=15)
