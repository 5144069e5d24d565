"""How many calls a batch keeps in flight, and the pause every worker honours.

:class:`AdaptiveLimit` is the policy, the same for every engine: additive increase,
multiplicative decrease (as TCP, and as the OpenAI cookbook advises for rate limits). It
halves on a 429 and shrinks by a quarter when a response's rate-limit headers say a window is
nearly used; after that it grows by one call per ``limit`` successes, up to the ceiling the
user gave. One decrease per ``cooldown`` seconds: the calls already in flight when the first
429 came tend to come back limited too, and must not drive the limit to one.

:class:`LocalSlots` holds the thread engine's calls to the current limit, and
:class:`LocalPause` is its pause: a ``Retry-After`` seen by one worker holds
back every worker's next call until it has passed. (The Dask engine uses a
``distributed.Variable`` for the same thing.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import attrs

from ..events import RateLimitSnapshot
from ..ratelimits import openai_limits

#: A window this full (percent used, or share of requests/tokens remaining) means slow down.
NEARLY_USED_PERCENT = 90.0
NEARLY_EMPTY_SHARE = 0.05
#: Pause when a 429 gave no hint, and the longest pause honoured (seconds).
DEFAULT_PAUSE = 1.0
MAX_PAUSE = 300.0


def window_nearly_used(snapshot: RateLimitSnapshot | None) -> bool:
    """Whether the rate-limit headers of a response say a limit is about to be hit."""
    if snapshot is None:
        return False
    for window in (snapshot.primary, snapshot.secondary):
        if window is not None and window.used_percent >= NEARLY_USED_PERCENT:
            return True
    limits = openai_limits(snapshot)
    if limits is None:
        return False
    for remaining, limit in ((limits.remaining_requests, limits.limit_requests),
                             (limits.remaining_tokens, limits.limit_tokens)):
        if remaining is not None and limit and remaining <= limit * NEARLY_EMPTY_SHARE:
            return True
    return False


@attrs.define
class AdaptiveLimit:
    """The current concurrency (``limit``), between 1 and ``ceiling``."""

    ceiling: int
    cooldown: float = 1.0
    clock: Callable[[], float] = time.monotonic
    limit: float = attrs.field(default=0.0)
    lowest: int = attrs.field(default=0)
    _last_decrease: float = attrs.field(default=float("-inf"), alias="_last_decrease")

    def __attrs_post_init__(self) -> None:
        if self.ceiling < 1:
            from .jobs import BatchInputError

            raise BatchInputError(f"concurrency must be at least 1, got {self.ceiling}")
        self.limit = float(self.ceiling)
        self.lowest = self.ceiling

    @property
    def current(self) -> int:
        return max(1, int(self.limit))

    def _decrease(self, factor: float) -> None:
        now = self.clock()
        if now - self._last_decrease < self.cooldown:
            return
        self._last_decrease = now
        self.limit = max(1.0, self.current * factor)
        self.lowest = min(self.lowest, self.current)

    def rate_limited(self) -> None:
        """A call came back 429."""
        self._decrease(0.5)

    def succeeded(self, snapshot: RateLimitSnapshot | None = None) -> None:
        """A call succeeded; ``snapshot`` is its rate-limit headers, if any."""
        if window_nearly_used(snapshot):
            self._decrease(0.75)
        elif self.limit < self.ceiling:
            self.limit = min(float(self.ceiling), self.limit + 1.0 / self.current)


def pause_seconds(retry_after: float | None) -> float:
    """The pause for a 429 with this hint (none: a default; bounded either way)."""
    if retry_after is None or not retry_after >= 0.0:
        return DEFAULT_PAUSE
    return min(retry_after, MAX_PAUSE)


class LocalSlots:
    """At most ``limit`` calls at once among this process's threads; the limit can change
    while they wait (the thread engine's counterpart of the Dask engine's Semaphore)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._active = 0
        self._cond = threading.Condition()
        self._cancelled = False

    def set_limit(self, limit: int) -> None:
        with self._cond:
            self._limit = limit
            self._cond.notify_all()

    def __enter__(self) -> None:
        with self._cond:
            # Bounded waits, so a cancelled run never leaves a thread behind for long.
            while self._active >= self._limit and not self._cancelled:
                self._cond.wait(1.0)
            self._active += 1

    def __exit__(self, *exc: object) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify()

    def cancel(self) -> None:
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()


class LocalPause:
    """A shared "no calls before this time" for the threads of one process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until = 0.0
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._until = max(self._until, self._clock() + seconds)

    def wait(self) -> None:
        """Return once no pause is in force (or the pause was cancelled)."""
        while True:
            with self._lock:
                left = self._until - self._clock()
            if left <= 0 or self._wake.wait(min(left, MAX_PAUSE)):
                return

    def cancel(self) -> None:
        """End every wait now (the run is stopping)."""
        self._wake.set()


__all__ = ["AdaptiveLimit", "LocalPause", "LocalSlots", "pause_seconds", "window_nearly_used"]
