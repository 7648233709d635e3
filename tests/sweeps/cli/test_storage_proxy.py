"""`storage-proxy`: Optuna's gRPC proxy in front of a database; every command takes grpc:// URLs."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import optuna
import pytest
from helpers.checks import assert_exactly, finish
from helpers.cli import run_cli, start_storage_proxy
from mlflow import MlflowClient

from mnist_models.errors import ConfigError
from sweeps.store.keys import RUN_ID_ATTR
from sweeps.store.storage import storage_kind
from tracking.server import MlflowServer, free_port

TINY = [
    *("--model", "mlp", "--pruner", "none", "--train-size", "500", "--epochs", "1"),
    *("--set", "data.test_size=200", "--set", "mlp.hidden_sizes=[16]"),
]


def test_a_proxy_url_is_a_storage_of_its_own_kind() -> None:
    assert storage_kind("grpc://10.0.0.7:13000") == "grpc"
    for url in ("grpc://10.0.0.7", "grpc://:13000", "grpc://host:notaport", "grpc://h:1/db"):
        with pytest.raises(ConfigError, match="expected grpc://HOST:PORT"):
            storage_kind(url)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--storage", "study.journal"], "expected a database URL"),
        (["--storage", "sqlite:///x.db", "--port", "0"], "--port 0: expected 1-65535"),
        # A database that cannot be opened: refused before serving, its password never shown.
        (["--storage", f"postgresql://u:S3cr3t-pw@127.0.0.1:{free_port()}/db"], "cannot open it"),
    ],
)
def test_bad_proxy_input_is_one_line_before_serving(
    args: list[str], message: str, tmp_path: Path, mnist_dir: Path
) -> None:
    done = run_cli(["storage-proxy", *args], tmp_path, mnist_dir, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr
    assert "S3cr3t" not in done.stdout + done.stderr


def test_workers_share_a_study_through_the_proxy_and_log_to_a_server_on_postgresql(
    tmp_path: Path, mnist_dir: Path, pg_storage: str, pg_mlflow_server: MlflowServer
) -> None:
    """The stack of many hosts, on loopback: PostgreSQL behind the proxy, an MLflow server on
    PostgreSQL with proxied artifacts, `sweep --workers 2` and a worker joining later."""
    port = free_port()
    proxy_url = f"grpc://127.0.0.1:{port}"
    tracking = pg_mlflow_server.url
    proxy = start_storage_proxy(pg_storage, port, tmp_path, mnist_dir)
    try:
        args = ["sweep", "--study", "px", "--storage", proxy_url, "--tracking-uri", tracking]
        sweep = run_cli([*args, "--trials", "4", "--workers", "2", *TINY], tmp_path, mnist_dir)
        assert sweep.returncode == 0, sweep.stdout + sweep.stderr
        # A worker names only the study and the proxy: config, target and MLflow come from it.
        worker = ["worker", "--study", "px", "--storage", proxy_url, "--trials", "5"]
        joined = run_cli(worker, tmp_path, mnist_dir)
        assert joined.returncode == 0, joined.stdout + joined.stderr
        listed = run_cli(["studies", "--storage", proxy_url], tmp_path, mnist_dir)
        assert listed.returncode == 0 and "px" in listed.stdout + listed.stderr
    finally:
        started = time.monotonic()
        proxy.send_signal(signal.SIGTERM)
        output = finish(proxy, code=128 + signal.SIGTERM)
    assert time.monotonic() - started < 30
    assert output.strip().splitlines()[-1] == "stopped by SIGTERM; the storage proxy is stopped"
    # What the proxy wrote is in the database itself; no run lost or doubled on the server.
    trials = assert_exactly(5, optuna.load_study(study_name="px", storage=pg_storage), tracking)
    # Artifacts went through the server (mlflow-artifacts:), into its folder.
    client = MlflowClient(tracking)
    for trial in trials:
        run = client.get_run(trial.user_attrs[RUN_ID_ATTR])
        assert run.info.artifact_uri.startswith("mlflow-artifacts:"), run.info.artifact_uri
        assert client.list_artifacts(run.info.run_id)
    served = {p.name for p in pg_mlflow_server.artifacts.rglob("*") if p.is_file()}
    assert "confusion_matrix.png" in served, sorted(served)


def test_a_command_without_its_proxy_says_so_in_one_line(tmp_path: Path, mnist_dir: Path) -> None:
    url = f"grpc://127.0.0.1:{free_port()}"
    done = run_cli(["studies", "--storage", url], tmp_path, mnist_dir, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert f"--storage '{url}': no storage proxy answers" in line
