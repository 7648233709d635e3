"""A local ``mlflow server`` that starts lean and stops completely.

With default settings ``mlflow server`` starts about 15 processes (~2.7 GB), and a SIGTERM to
the parent leaves its job runner and consumers alive. Here it runs with one worker and job
execution off (ready in seconds), in its own process group, and stopping it stops the group;
so does the death of the process that started it (:mod:`tracking.lifeline`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from tracking.lifeline import lifeline_command
from tracking.redact import redact_url


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class MlflowServer:
    """Runs ``mlflow server`` on loopback until :meth:`stop` (or the ``with`` block) ends it.

    Args:
        backend_store_uri: Where runs live (``sqlite:///...`` or ``postgresql://...``).
        artifacts: Folder of the served artifact root.
        port: Port to listen on; a free one by default.
        host: Interface; loopback by default.
        log_file: Where the server's output goes (a temporary file otherwise discarded).
    """

    def __init__(
        self,
        backend_store_uri: str,
        artifacts: str | Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_file: str | Path | None = None,
    ) -> None:
        self.backend_store_uri = backend_store_uri
        self.artifacts = Path(artifacts)
        self.host = host
        self.port = port or free_port(host)
        self.log_file = Path(log_file) if log_file else self.artifacts.parent / "mlflow-server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process group (its lifeline's pid) while it runs, else None."""
        return None if self._process is None else self._process.pid

    def start(self, timeout: float = 90.0) -> MlflowServer:
        """Starts the server and waits until ``/health`` answers.

        Raises:
            RuntimeError: The server exited or did not answer within ``timeout`` seconds.
        """
        self.artifacts.mkdir(parents=True, exist_ok=True)
        command = [
            *(sys.executable, "-m", "mlflow", "server"),
            *("--backend-store-uri", self.backend_store_uri),
            # Proxied artifacts: clients upload through the server, never to its disk.
            *("--serve-artifacts", "--artifacts-destination", self.artifacts.resolve().as_uri()),
            *("--host", self.host, "--port", str(self.port), "--workers", "1"),
        ]
        # No job runner; no usage reports from a local tool (the user can still opt in).
        env = {"MLFLOW_DISABLE_TELEMETRY": "true", **os.environ}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        with open(self.log_file, "ab") as log:
            # Its own session and process group, led by a lifeline that stops the group when
            # this process dies without stopping it (SIGKILL, a crash).
            self._process = subprocess.Popen(
                lifeline_command(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"mlflow server for {redact_url(self.backend_store_uri)} exited with code "
                    f"{self._process.returncode}; see {self.log_file}"
                )
            if self.healthy():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"mlflow server did not answer within {timeout:.0f}s; see {self.log_file}"
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """Stops the server's whole process group (SIGTERM, then SIGKILL)."""
        process, self._process = self._process, None
        if process is None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
        # Whatever of the group is left: children outlive a SIGTERM to their parent.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
