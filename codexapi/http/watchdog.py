"""One background thread that fires timers: bounds that a socket timeout cannot express.

A socket timeout bounds each read, so a server dripping one byte per 0.5 s never trips it.
Two bounds need a clock instead: the wait for a whole response head (bounded as a whole by the
read timeout) and a call's ``deadline=``. When one passes, the watchdog shuts the socket down,
which wakes the blocked read with an error that the transport then reports as the timeout it
was. One daemon thread serves every client; scheduling is a heap push, not a thread.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from .. import forksafe
from ..threads import start_daemon


class Timer:
    """A scheduled call; ``cancel()`` it once the guarded wait is over."""

    __slots__ = ("_fn", "_lock", "cancelled", "fired", "when")

    def __init__(self, when: float, fn: Callable[[], None]) -> None:
        self.when = when
        self._fn = fn
        self._lock = threading.Lock()
        self.cancelled = False
        #: True once the call ran: the guarded wait was cut short by this timer.
        self.fired = False

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True

    def _fire(self) -> None:
        with self._lock:
            if self.cancelled:
                return
            self.fired = True
        with contextlib.suppress(Exception):
            self._fn()


class Watchdog:
    """A heap of timers served by one lazily started daemon thread."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._reset()
        forksafe.register(self)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Timer]] = []
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def _after_fork(self) -> None:
        # The thread did not survive the fork; the parent's timers are not the child's.
        self._reset()

    def schedule(self, delay: float, fn: Callable[[], None]) -> Timer:
        """Call ``fn`` in ``delay`` seconds unless the returned timer is cancelled first."""
        timer = Timer(self._clock() + max(delay, 0.0), fn)
        with self._cond:
            heap = self._heap
            if len(heap) > 64 and sum(t.cancelled for _, _, t in heap) > len(heap) // 2:
                # Cancelled timers are dropped lazily; rebuild before they pile up.
                heap[:] = [entry for entry in heap if not entry[2].cancelled]
                heapq.heapify(heap)
            heapq.heappush(heap, (timer.when, next(self._ids), timer))
            if self._thread is None:
                self._thread = start_daemon(self._run, "codexapi-watchdog")
            elif heap[0][2] is timer:
                self._cond.notify()
        return timer

    def _run(self) -> None:
        cond = self._cond
        heap = self._heap
        while True:
            with cond:
                while heap and heap[0][2].cancelled:
                    heapq.heappop(heap)
                if not heap:
                    cond.wait()
                    continue
                wait = heap[0][0] - self._clock()
                if wait > 0:
                    cond.wait(wait)
                    continue
                timer = heapq.heappop(heap)[2]
            timer._fire()


#: The process's watchdog.
WATCHDOG = Watchdog()


def shutdown_socket(sock: Any) -> None:
    """Wake any thread blocked reading ``sock`` (close() alone does not, on Linux)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
