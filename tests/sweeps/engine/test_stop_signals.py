"""The stop-signal handler in-process: one clean stop per process, handlers restored after."""

from __future__ import annotations

import os
import signal

import pytest

from sweeps.engine.signals import Interrupted, exit_code, stopping_on_signals
from tracking import interrupt_reason


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_each_stop_signal_raises_one_interrupt_and_later_ones_wait(signum: int) -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    with pytest.raises(Interrupted) as caught, stopping_on_signals():
        try:
            os.kill(os.getpid(), signum)
        finally:
            # A second stop while the clean end runs is ignored, not raised into it.
            os.kill(os.getpid(), signal.SIGTERM)
            os.kill(os.getpid(), signal.SIGHUP)
    assert caught.value.signum == signum
    assert isinstance(caught.value, KeyboardInterrupt), "every Ctrl-C clean-up path applies"
    assert exit_code(caught.value) == 128 + signum
    assert {s: signal.getsignal(s) for s in before} == before, "previous handlers are back"


def test_exit_codes_and_reasons_follow_the_signal() -> None:
    assert exit_code(KeyboardInterrupt()) == 130  # a plain Ctrl-C
    assert exit_code(Interrupted(signal.SIGTERM)) == 143
    assert exit_code(Interrupted(signal.SIGHUP)) == 129
    assert interrupt_reason(KeyboardInterrupt()) == "interrupted"
    assert interrupt_reason(Interrupted(signal.SIGINT)) == "interrupted"
    assert interrupt_reason(Interrupted(signal.SIGTERM)) == "interrupted by SIGTERM"


def test_a_worker_ignores_the_terminals_ctrl_c_and_stops_on_sigterm() -> None:
    with pytest.raises(Interrupted) as caught, stopping_on_signals(interrupt=False):
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGTERM)
    assert caught.value.signum == signal.SIGTERM
