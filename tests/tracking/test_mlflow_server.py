"""Sweeps against a real `mlflow server` on loopback; an unreachable server fails fast."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from helpers.cli import run_cli
from mlflow import MlflowClient

from tracking.server import MlflowServer, free_port


def test_a_sweep_logs_into_a_tracking_server(tmp_path: Path, mnist_dir: Path) -> None:
    server = MlflowServer(f"sqlite:///{tmp_path / 'server.db'}", tmp_path / "artifacts")
    with server:
        done = run_cli(
            [
                "sweep",
                "--study",
                "srv",
                "--storage",
                f"sqlite:///{tmp_path / 'optuna.db'}",
                "--tracking-uri",
                server.url,
                "--trials",
                "2",
                "--pruner",
                "none",
                "--train-size",
                "1500",
                "--epochs",
                "2",
                "--set",
                "mlp.hidden_sizes=[32]",
            ],
            tmp_path,
            mnist_dir,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        client = MlflowClient(server.url)
        experiment = client.get_experiment_by_name("srv")
        runs = client.search_runs([experiment.experiment_id], "tags.`mnist_sweeps.role` = 'trial'")
        assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]
        for run in runs:
            history = client.get_metric_history(run.info.run_id, "val_accuracy")
            assert [m.step for m in history] == [1, 2]
            names = {a.path for a in client.list_artifacts(run.info.run_id)}
            assert {"config.toml", "confusion_matrix.png", "curves.png"} <= names
        local = client.download_artifacts(runs[0].info.run_id, "config.toml", str(tmp_path))
        assert 'model = "mlp"' in Path(local).read_text()
        process_group = server._process.pid  # type: ignore[union-attr]
    assert not server.healthy()
    time.sleep(0.5)
    alive = subprocess.run(["pgrep", "-g", str(process_group)], capture_output=True, text=True)
    assert alive.stdout.strip() == "", "the server's whole process group is stopped"


def test_an_unreachable_tracking_server_fails_before_any_work(
    tmp_path: Path, mnist_dir: Path
) -> None:
    url = f"http://user:hunter2@127.0.0.1:{free_port()}"
    started = time.monotonic()
    done = run_cli(
        [
            "sweep",
            "--study",
            "x",
            "--storage",
            f"sqlite:///{tmp_path / 'optuna.db'}",
            "--tracking-uri",
            url,
            "--trials",
            "1",
        ],
        tmp_path,
        mnist_dir,
    )
    assert done.returncode == 2
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and "MLflow server not reachable" in lines[0], lines
    assert "hunter2" not in lines[0] and "user:***@" in lines[0]
    assert time.monotonic() - started < 60, "no minutes of MLflow's own retries"
    assert not (tmp_path / "optuna.db").exists(), "nothing was created"
