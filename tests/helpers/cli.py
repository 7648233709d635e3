"""Runs ``mnist-sweep`` as a user would: a separate process, on real MNIST, headless plots."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def cli_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "sweeps.cli", *args]


def cli_env(mnist_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg", **(extra or {})}


def run_cli(
    args: list[str], cwd: Path, mnist_dir: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """Runs one command to its end and returns its exit code and output."""
    return subprocess.run(
        cli_command(args),
        cwd=cwd,
        env=cli_env(mnist_dir),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(
    args: list[str],
    cwd: Path,
    mnist_dir: Path,
    env: dict[str, str] | None = None,
    interruptible: bool = False,
) -> subprocess.Popen[str]:
    """Starts one command in the background, stdout and stderr merged into one pipe.

    ``interruptible`` gives the command Ctrl-C's default handling even where the tests run
    as a background job, whose children inherit an ignored SIGINT.
    """
    return subprocess.Popen(
        cli_command(args),
        cwd=cwd,
        env=cli_env(mnist_dir, env),
        preexec_fn=_default_sigint if interruptible else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def start_storage_proxy(
    database: str, port: int, cwd: Path, mnist_dir: Path
) -> subprocess.Popen[str]:
    """Starts ``storage-proxy`` in front of ``database`` on loopback ``port``; returns once it
    has printed its address (the database is open then, and it serves next)."""
    process = start_cli(
        ["storage-proxy", "--storage", database, "--port", str(port)], cwd, mnist_dir
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert f"at grpc://127.0.0.1:{port}" in line, line + process.communicate()[0]
    assert "pw" not in line
    return process


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_ui(process: subprocess.Popen[str]) -> str:
    """Reads a started ``ui`` command's output until it says it serves (its URLs are printed
    once the server answers) or exits; returns what it printed."""
    assert process.stdout is not None
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.strip() == "Ctrl-C stops it" or process.poll() is not None:
            break
    return "".join(lines)
