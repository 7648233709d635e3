"""SIGTERM and SIGHUP stop a command the way Ctrl-C does.

Batch schedulers, Kubernetes, ``docker stop`` and systemd stop a process with SIGTERM, and a
closed terminal sends SIGHUP; only a person at a keyboard sends SIGINT. Python ends a
process at once on the first two, without running ``finally`` blocks: the trial in flight
would stay RUNNING in Optuna, its MLflow runs RUNNING, and servers started by the command
would live on. Here all three raise :class:`Interrupted` (a ``KeyboardInterrupt``) in the
main thread, so every clean-up path written for Ctrl-C runs for them too, and the command
exits with ``128 + signal``, as a shell reports a process killed by that signal.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType

STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Interrupted(KeyboardInterrupt):
    """A stop asked for by signal ``signum`` (Ctrl-C, SIGTERM or SIGHUP).

    Attributes:
        signum: The signal's number; the command exits with ``128 + signum``.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        """``SIGTERM``, ``SIGHUP`` or ``SIGINT``."""
        return signal.Signals(self.signum).name


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """``128 + signal``: 130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)


class _StopOnSignals:
    """The handler: the first stop signal raises :class:`Interrupted`; later ones wait.

    A clean end takes seconds (closing the trial's runs, re-queueing its params); a second
    signal must not cut it short. Ctrl-C twice more still forces an immediate exit, for a
    person who will not wait; a scheduler's repeated SIGTERM does not.
    """

    FORCE_AFTER = 3  # Ctrl-C presses

    def __init__(self) -> None:
        self.stopping: int | None = None
        self.presses = 0
        self.held = False  # a stop is remembered, and raised by release()
        self.raised = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if signum == getattr(signal, "SIGHUP", None):
            _drop_hung_up_terminal()
        if signum == signal.SIGINT:
            self.presses += 1
            if self.presses >= self.FORCE_AFTER:
                os._exit(128 + signum)
        if self.stopping is not None:
            return
        self.stopping = signum
        if not self.held:
            self.raised = True
            raise Interrupted(signum)

    def release(self) -> None:
        """Raises from here on; first the stop that arrived while held, if there was one."""
        self.held = False
        if self.stopping is not None and not self.raised:
            self.raised = True
            raise Interrupted(self.stopping)


_installed: list[_StopOnSignals] = []  # innermost last: `main` also runs inside a worker


@contextlib.contextmanager
def stopping_on_signals(interrupt: bool = True) -> Iterator[None]:
    """Within the block, SIGINT, SIGTERM and SIGHUP end this process cleanly.

    The previous handlers come back afterwards (``main`` also runs inside test processes).
    Only the main thread can install handlers; elsewhere the block changes nothing.

    Args:
        interrupt: ``False`` ignores SIGINT (a worker process of ``--workers``: the terminal's
            Ctrl-C reaches it too, but its parent decides and passes the stop on as SIGTERM).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    handler = _StopOnSignals()
    for signum in STOP_SIGNALS:
        ignored = signum == signal.SIGINT and not interrupt
        signal.signal(signum, signal.SIG_IGN if ignored else handler)
    _installed.append(handler)
    try:
        yield
    finally:
        _installed.remove(handler)
        for signum, old in previous.items():
            signal.signal(signum, old if old is not None else signal.SIG_DFL)


def hold_stops() -> None:
    """From here on a stop signal is remembered, not raised, until :func:`release_stops`.

    For the steps of Optuna's trial loop that no ``except`` of ours surrounds: a stop raised
    inside ``study.ask()`` (after the trial was created) or inside ``tell`` would leave the
    trial RUNNING with nobody to close it. Nothing changes outside :func:`stopping_on_signals`.
    """
    if _installed:
        _installed[-1].held = True


def release_stops() -> None:
    """Stops are raised at once again; a stop that arrived while held is raised now.

    Raises:
        Interrupted: A stop signal arrived while stops were held.
    """
    if _installed:
        _installed[-1].release()


def stop_pending() -> bool:
    """Whether a stop signal arrived while held and waits to be raised."""
    return bool(_installed) and _installed[-1].stopping is not None and not _installed[-1].raised


@contextlib.contextmanager
def stops_held() -> Iterator[None]:
    """Holds stops within the block (parts of it may release them); at its end a stop that is
    still held is raised, unless an error is already on its way out."""
    hold_stops()
    try:
        yield
    except BaseException:
        if _installed:
            _installed[-1].held = False
        raise
    release_stops()


def _drop_hung_up_terminal() -> None:
    """Points stdout and stderr at /dev/null if their terminal has hung up.

    Writing to a terminal that was closed fails with EIO, which would end the clean-up at its
    first message. A hung-up terminal is still a character device but no longer a tty.
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            fd = stream.fileno()
            if stat.S_ISCHR(os.fstat(fd).st_mode) and not os.isatty(fd):
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, fd)
                os.close(null)


def when_parent_dies(action: Callable[[], object]) -> None:
    """Runs ``action`` in a watcher thread once the ``multiprocessing`` parent of this process
    is gone (a parent that was SIGKILLed can stop nothing itself); nothing outside one."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        action()

    threading.Thread(target=watch, name="parent-death-watch", daemon=True).start()
