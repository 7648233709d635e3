"""``mnist-sweep ui`` serves the sweeps' store over HTTP and stops every process it started."""

from __future__ import annotations

import argparse
import json
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from mnist_models.errors import ConfigError
from sweeps.cli.ui import run as cmd_ui
from tracking import Tracker
from tracking.server import free_port


def test_ui_serves_the_store_and_stops_completely(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = Tracker("mnist-mlp", store).start_run("trial-000 lr=0.001")
    run.end()
    args = argparse.Namespace(tracking_uri=store, host="127.0.0.1", port=free_port())
    stop = threading.Event()
    serving = threading.Thread(target=cmd_ui, args=(args, stop), daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{args.port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            body = json.dumps({"max_results": 10}).encode()
            request = urllib.request.Request(
                f"{url}/api/2.0/mlflow/experiments/search",
                data=body,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as reply:
                names = [e["name"] for e in json.load(reply)["experiments"]]
            break
        except OSError:
            assert time.monotonic() < deadline, "the UI never answered"
            time.sleep(0.3)
    assert "mnist-mlp" in names
    with urllib.request.urlopen(url, timeout=5) as page:
        assert page.status == 200 and b"<html" in page.read().lower()
    stop.set()
    serving.join(30)
    assert not serving.is_alive()
    time.sleep(0.5)
    pattern = f"mlflow server .*--port {args.port}"
    left = subprocess.run(["pgrep", "-f", "--", pattern], capture_output=True, text=True)
    assert left.returncode == 1 and left.stdout == "", "no process of the UI is left"
    with pytest.raises(OSError):
        urllib.request.urlopen(url, timeout=2)


def test_ui_refuses_a_missing_store(tmp_path: Path) -> None:
    args = argparse.Namespace(
        tracking_uri=f"sqlite:///{tmp_path / 'none.db'}", host="127.0.0.1", port=5000
    )
    with pytest.raises(ConfigError, match="expected an existing SQLite store"):
        cmd_ui(args)
    assert not (tmp_path / "none.db").exists()
