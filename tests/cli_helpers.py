"""Runs ``mnist-sweep`` as a user would: a separate process, on real MNIST, headless plots."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def cli_command(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "sweeps.cli", *args]


def cli_env(mnist_dir: Path) -> dict[str, str]:
    return {**os.environ, "MNIST_DIR": str(mnist_dir), "MPLBACKEND": "Agg"}


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


def start_cli(args: list[str], cwd: Path, mnist_dir: Path) -> subprocess.Popen[str]:
    """Starts one command in the background, stdout and stderr merged into one pipe."""
    return subprocess.Popen(
        cli_command(args),
        cwd=cwd,
        env=cli_env(mnist_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
