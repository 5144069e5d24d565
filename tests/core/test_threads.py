"""Helper threads block the asynchronous signals, so Ctrl-C always interrupts the main thread
(a SIGINT the kernel hands to a helper thread would leave the main thread's read or REPL prompt
blocked; it made the REPL's Ctrl-C test fail about one run in four)."""

from __future__ import annotations

import signal
import threading

import pytest

from codexapi.http.watchdog import WATCHDOG
from codexapi.threads import signals_blocked, start_daemon

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"),
                                reason="signal masks are POSIX")


def own_mask() -> set[signal.Signals]:
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, []))


def test_a_started_daemon_blocks_sigint_and_sigterm_but_not_faults() -> None:
    seen: list[set[signal.Signals]] = []
    start_daemon(lambda: seen.append(own_mask()), "probe").join(5)
    assert {signal.SIGINT, signal.SIGTERM} <= seen[0]
    assert signal.SIGSEGV not in seen[0]
    assert signal.SIGINT not in own_mask()  # the caller's mask is back as it was


def test_the_watchdog_thread_leaves_sigint_to_the_main_thread() -> None:
    seen: list[set[signal.Signals]] = []
    done = threading.Event()
    WATCHDOG.schedule(0, lambda: (seen.append(own_mask()), done.set()))
    assert done.wait(5)
    assert signal.SIGINT in seen[0]


def test_a_signal_during_the_block_is_delivered_after_it() -> None:
    got: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: got.append(signum))
    try:
        with signals_blocked():
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGUSR1)
            assert got == []
        assert got == [signal.SIGUSR1]
    finally:
        signal.signal(signal.SIGUSR1, previous)
