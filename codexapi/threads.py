"""Helper threads that leave signals to the main thread.

Python runs signal handlers in the main thread only, but the kernel may hand a signal sent to
the process (Ctrl-C's SIGINT, a SIGTERM) to any thread that does not block it. When one of our
helper threads (the watchdog, the chat spinner, the embedded server) receives it, the handler
only sets a flag: the main thread stays blocked in its read or at the REPL prompt, and Ctrl-C
seems lost until that wait ends by itself. So every thread codexapi starts blocks the
asynchronous signals, and the main thread is always the one interrupted.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: Signals raised by the faulting thread itself; blocking those is undefined behaviour.
_SYNCHRONOUS = frozenset(getattr(signal, name) for name in (
    "SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL", "SIGABRT", "SIGTRAP", "SIGSYS")
    if hasattr(signal, name))


def _asynchronous() -> set[signal.Signals]:
    return {s for s in signal.valid_signals()
            if isinstance(s, signal.Signals) and s not in _SYNCHRONOUS}


@contextmanager
def signals_blocked() -> Iterator[None]:
    """Block the asynchronous signals in this thread meanwhile; a thread started inside
    inherits the mask from its first instruction. Signals that arrive are delivered after."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: signals go to the main thread
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _asynchronous())
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def block_signals() -> None:
    """Block the asynchronous signals in the calling (helper) thread for good; for pools,
    as their ``initializer``."""
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, _asynchronous())


def start_daemon(target: Callable[..., Any], name: str, **kwargs: Any) -> threading.Thread:
    """Start a daemon thread running ``target(**kwargs)`` with signals left to the main
    thread."""
    thread = threading.Thread(target=target, kwargs=kwargs, name=name, daemon=True)
    with signals_blocked():
        thread.start()
    return thread


__all__ = ["block_signals", "signals_blocked", "start_daemon"]
