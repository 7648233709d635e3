"""Credentials never leave the URL they were given in, and servers listen on loopback.

A real sweep logs with a password in its Optuna storage URL and another in its MLflow tracking
URL; then ``report``, ``best`` and ``studies`` read it back. Neither password may appear in any
output, MLflow param, tag, metric, artifact, server log or database row, Optuna attribute,
exported config or HTML report. The tracking server is an ``mlflow server`` without auth: it
ignores the ``user:password@`` that MLflow's client (requests) turns into a basic-auth header.
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import json
import os
import queue
import signal
import threading
import time
from pathlib import Path

import optuna
import pytest
from helpers.cli import run_cli, start_cli
from mlflow import MlflowClient
from mlflow.entities import ViewType

from sweeps.cli.main import build_parser
from tracking import Tracker
from tracking.server import MlflowServer, free_port

pytestmark = pytest.mark.fault

STORAGE_PASSWORD = "TopSecret-123"
TRACKING_PASSWORD = "TrackPw-456"
# The tracking password also travels as a basic-auth header: its base64 must not leak either.
BASIC_AUTH = base64.b64encode(f"mlflowuser:{TRACKING_PASSWORD}".encode()).decode()
SECRETS = (STORAGE_PASSWORD, TRACKING_PASSWORD, BASIC_AUTH)


class Places:
    """Every text looked at, by where it came from; ``leaks`` names those holding a secret."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.leaks: list[str] = []

    def check(self, where: str, content: str | bytes | object) -> None:
        if isinstance(content, bytes):
            text = content.decode("utf-8", errors="replace")
            text += content.decode("utf-16-le", errors="replace")  # e.g. SQLite pages
        elif isinstance(content, str):
            text = content
        else:
            text = json.dumps(content, default=str)
        self.seen.append(where)
        self.leaks += [f"{where}: {secret}" for secret in SECRETS if secret in text]

    def files(self, where: str, folder: Path) -> int:
        found = [path for path in sorted(folder.rglob("*")) if path.is_file()]
        for path in found:
            self.check(f"{where}/{path.relative_to(folder)}", path.read_bytes())
        return len(found)


def _database_rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table of the Optuna database at ``url``, by table."""
    import psycopg

    with psycopg.connect(url) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
        return {
            table: connection.execute(f'SELECT * FROM "{table}"').fetchall() for (table,) in tables
        }


def test_no_credential_reaches_any_output_record_or_file(
    tmp_path: Path, mnist_dir: Path, pg_storage: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    work = tmp_path / "work"
    work.mkdir()
    storage = pg_storage.replace("//postgres@", f"//postgres:{STORAGE_PASSWORD}@", 1)
    assert STORAGE_PASSWORD in storage
    served = tmp_path / "server"
    server = MlflowServer(
        f"sqlite:///{served / 'server.db'}",
        served / "artifacts",
        log_file=served / "mlflow-server.log",
    )
    served.mkdir()
    places = Places()
    with server:
        tracking = f"http://mlflowuser:{TRACKING_PASSWORD}@{server.host}:{server.port}"
        commands = {
            "sweep": [
                *("sweep", "--model", "mlp", "--trials", "2", "--epochs", "1", "--study", "sec"),
                *("--storage", storage, "--tracking-uri", tracking),
                *("--set", "data.train_size=1500", "--set", "data.test_size=300"),
                *("--set", "mlp.hidden_sizes=[16]"),
            ],
            "report": [
                *("report", "--study", "sec", "--storage", storage),
                *("--tracking-uri", tracking, "--output", "report"),
            ],
            "best": ["best", "--study", "sec", "--storage", storage, "--output", "best.toml"],
            "studies": ["studies", "--storage", storage],
        }
        for name, args in commands.items():
            done = run_cli(args, work, mnist_dir)
            assert done.returncode == 0, f"{name}:\n{done.stdout}\n{done.stderr}"
            places.check(f"{name} stdout", done.stdout)
            places.check(f"{name} stderr", done.stderr)
            if name == "sweep":  # the URLs are shown, redacted
                assert "postgres:***@" in done.stderr and "mlflowuser:***@" in done.stderr

        client = MlflowClient(server.url)  # no auth on the server: no credentials needed
        experiments = client.search_experiments(view_type=ViewType.ALL)
        assert "sec" in {e.name for e in experiments}
        runs = 0
        for experiment in experiments:
            where = f"experiment {experiment.name}"
            places.check(f"{where} tags", experiment.tags)
            places.check(f"{where} artifact location", experiment.artifact_location)
            for run in client.search_runs([experiment.experiment_id], run_view_type=ViewType.ALL):
                runs += 1
                where = f"run {run.info.run_name}"
                places.check(f"{where} info", dict(run.info))
                for key, value in run.data.params.items():
                    places.check(f"{where} param {key}", f"{key}={value}")
                for key, value in run.data.tags.items():
                    places.check(f"{where} tag {key}", f"{key}={value}")
                places.check(f"{where} metric keys", sorted(run.data.metrics))
                inputs = run.inputs.dataset_inputs if run.inputs else []
                places.check(f"{where} inputs", [str(i) for i in inputs])
                downloaded = tmp_path / "downloads" / run.info.run_id
                downloaded.mkdir(parents=True)
                client.download_artifacts(run.info.run_id, "", str(downloaded))
                places.files(f"{where} artifact", downloaded)
        assert runs == 3, "the study's parent run and one child per trial"

    # What the server wrote: its log, its artifact root and its database (every stored field).
    assert places.files("server", served) >= 10
    assert (served / "mlflow-server.log").is_file()

    optuna_storage = optuna.storages.RDBStorage(storage)
    study = optuna.load_study(study_name="sec", storage=optuna_storage)
    places.check("study user_attrs", study.user_attrs)
    study_id = optuna_storage.get_study_id_from_name("sec")
    places.check("study system_attrs", optuna_storage.get_study_system_attrs(study_id))
    assert len(study.trials) == 2
    for trial in study.trials:
        for kind in ("user_attrs", "system_attrs", "params"):
            places.check(f"trial {trial.number} {kind}", getattr(trial, kind))
    optuna_storage.remove_session()
    optuna_storage.engine.dispose()  # the database is dropped after the test
    for table, rows in _database_rows(pg_storage).items():
        places.check(f"optuna table {table}", [str(row) for row in rows])

    assert (work / "best.toml").is_file() and (work / "report" / "sec.html").is_file()
    assert "postgres:***@" in (work / "best.toml").read_text()
    places.files("working folder", work)  # best.toml, the HTML report, anything else

    assert places.leaks == [], places.leaks
    assert len(places.seen) >= 100, f"only {len(places.seen)} places looked at"


def _listening(port: int) -> set[str]:
    """Local addresses of the sockets listening on TCP ``port`` (from /proc/net/tcp{,6})."""
    found = set()
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if fields[3] == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                assert len(address) == width
                found.add(_address(address))
    return found


def _address(hex_address: str) -> str:
    """/proc/net's little-endian hex form, as text: 0100007F -> 127.0.0.1."""
    if len(hex_address) == 8:
        return ".".join(str(b) for b in reversed(bytes.fromhex(hex_address)))
    words = [bytes.fromhex(hex_address[i : i + 8])[::-1].hex() for i in range(0, 32, 8)]
    groups = [int("".join(words)[i : i + 4], 16) for i in range(0, 32, 4)]
    return ":".join(f"{g:x}" for g in groups)


def test_servers_started_by_the_product_bind_loopback_by_default(
    tmp_path: Path, mnist_dir: Path
) -> None:
    assert inspect.signature(MlflowServer).parameters["host"].default == "127.0.0.1"
    assert MlflowServer("sqlite:///x.db", tmp_path).url.startswith("http://127.0.0.1:")
    assert build_parser().parse_args(["ui"]).host == "127.0.0.1"

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    Tracker("x", uri)  # a store that exists, as `ui` requires
    port = free_port()
    process = start_cli(
        ["ui", "--tracking-uri", uri, "--port", str(port)], tmp_path, mnist_dir, interruptible=True
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in process.stdout or ():
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    output: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while not any("Ctrl-C stops it" in line for line in output):
            assert time.monotonic() < deadline and process.poll() is None, "".join(output)
            with contextlib.suppress(queue.Empty):
                output.append(lines.get(timeout=1))
        assert f"at http://127.0.0.1:{port}" in "".join(output)
        assert _listening(port) == {"127.0.0.1"}, "bound to loopback only, not 0.0.0.0 or ::"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 130, "".join(output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    time.sleep(0.5)
    assert _listening(port) == set(), "the server stopped with the command"
