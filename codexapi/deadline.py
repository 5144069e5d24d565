"""``deadline=``: one clock for a whole call, retries, waits and reads included."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from .errors import ConfigError, DeadlineExceeded


class Deadline:
    """The instant a call must be over by, on ``clock`` (monotonic seconds)."""

    __slots__ = ("at", "clock", "seconds")

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.at = clock() + seconds

    @classmethod
    def of(cls, seconds: object, clock: Callable[[], float] = time.monotonic
           ) -> Deadline | None:
        """A Deadline from a caller's ``deadline=`` argument (None: no deadline)."""
        if seconds is None:
            return None
        if (isinstance(seconds, bool) or not isinstance(seconds, int | float)
                or not math.isfinite(seconds) or seconds <= 0):
            raise ConfigError(f"deadline is seconds from now (a positive finite number) or "
                              f"None, got {seconds!r}")
        return cls(float(seconds), clock)

    def remaining(self) -> float:
        return self.at - self.clock()

    def passed(self) -> bool:
        return self.clock() >= self.at

    def exceeded(self, url: str | None = None, doing: str = "") -> DeadlineExceeded:
        what = f" ({doing})" if doing else ""
        return DeadlineExceeded(f"the call did not finish within its deadline of "
                                f"{self.seconds:g} s{what}", self.seconds, url=url)
