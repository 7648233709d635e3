"""Runs a command that dies with the process that started it, even a SIGKILLed one.

``python -m tracking.lifeline PARENT_PID -- COMMAND ...`` starts COMMAND in its own process
group (this process leads it) and stops the whole group, COMMAND's children included, within
half a second of PARENT_PID being gone (it watches its own parent). A parent that stops it
normally signals the group itself (:meth:`tracking.server.MlflowServer.stop`); a parent that
is SIGKILLed, or crashes, cannot, and ``mlflow server`` would otherwise live on with its
workers, holding the port.

Not Linux's parent-death signal (``PR_SET_PDEATHSIG``): it fires when the *thread* that
started the process ends, so a server started from a short-lived thread would be stopped at
once while its parent lives on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

POLL_SECONDS = 0.5
GRACE_SECONDS = 10.0


def lifeline_command(command: Sequence[str]) -> list[str]:
    """``command`` wrapped so that it dies with this process (start it in a new session)."""
    return [sys.executable, "-m", "tracking.lifeline", str(os.getpid()), "--", *command]


class _Stop(Exception):
    """Raised by the signal handler to leave the wait."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop


def _stop_group(child: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM to the whole group, SIGKILL to what is left after the grace period."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the group's SIGTERM reaches this process too
    with contextlib.suppress(ProcessLookupError):
        os.killpg(0, signal.SIGTERM)
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(GRACE_SECONDS)
    os.killpg(0, signal.SIGKILL)  # children outlive a SIGTERM to their parent; ends us too


def main(argv: Sequence[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m tracking.lifeline PARENT_PID -- COMMAND ...", file=sys.stderr)
        return 2
    parent = int(argv[0])
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    child = None
    try:
        child = subprocess.Popen(list(argv[2:]))  # same process group: stopped with it
        while os.getppid() == parent:  # also catches a parent that died before this started
            code = child.poll()
            if code is not None:
                return code
            time.sleep(POLL_SECONDS)
    except _Stop:
        pass
    _stop_group(child)
    return 128 + signal.SIGTERM


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
