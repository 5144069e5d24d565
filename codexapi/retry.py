"""Retries: whether, and how soon, a call is tried again.

:class:`RetryPolicy` is the provider's setting for request retries: which errors may be
retried (:meth:`RetryPolicy.is_retryable`), how long to wait (:meth:`RetryPolicy.delay`) and
when to stop (:meth:`RetryPolicy.is_exhausted`). :class:`Retries` is one call's state under it
and under ``Provider.stream_max_retries``, an immutable value as urllib3's ``Retry`` is: it
holds the counters, and its one method :meth:`Retries.again` answers "again, after this many
seconds" (with the next value) or raises the error that ends the call. The call
(:mod:`codexapi.call`) only loops and waits.

Two budgets, independent as in Codex (``request_max_retries``, ``stream_max_retries``):
requests whose answer did not come or came with a retryable status are retried under the
policy; a streamed turn that failed after its 2xx head but before any event reached the caller
is sent again, and a background turn that dropped later is resumed, up to
``stream_max_retries`` times together (each re-sent request's own failures again under the
policy). ``RetryPolicy(max_attempts=1)`` leaves re-sends and resumes on;
``stream_max_retries=0`` leaves request retries on.

Retried, as the policy allows: connect errors and resets before any response byte, and the
statuses that say the same (408 Request Timeout, 425 Too Early) (``retry_transport``), 429
(``retry_429``) and 500-599 (``retry_5xx``); never another 4xx, and
never an error that says it cannot succeed again (``error.retryable`` False: a proxy's 407, a
usage limit, a policy refusal). The delay is the server's hint when it gave one
(``retry-after-ms``, then ``Retry-After`` in seconds or as an HTTP date, RFC 9110 §10.2.3, then a
"Please try again in 1.5s" message), else codex-client's exponential backoff
(``codex-client/src/retry.rs``): ``base_delay * 2**(attempt-1)`` times a jitter factor in
[0.9, 1.1), floored to whole milliseconds. Every delay is capped by ``max_delay``, so a hostile
or confused server cannot park a client for hours.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any, Literal

import attrs

from .errors import (
    RETRYABLE_4XX,
    ApiError,
    ConfigError,
    DeadlineExceeded,
    IdleTimeout,
    RateLimitError,
    StreamError,
    TransportError,
)
from .ratelimits import parse_retry_after, retry_after_seconds


class PolicyError(ConfigError, ValueError):
    """An invalid policy value (also a ValueError, as attrs validators conventionally raise)."""


#: Codex's defaults (codex-core ``model_provider_info.rs``, codex-client ``RetryOn``): four
#: retries after the first try, 200 ms base, 429s left to the caller, 5xx and transport retried.
CODEX_REQUEST_MAX_RETRIES = 4
CODEX_BASE_DELAY = 0.2
#: The longest single wait, server hints included (the crate's ``MAX_RETRY_DELAY``).
MAX_RETRY_DELAY = 60.0

#: Source of jitter in [0, 1); :meth:`RetryPolicy.backoff` takes ``rand`` for tests.
_random: Callable[[], float] = random.random


@attrs.frozen
class RetryPolicy:
    """How many times, and how soon, a request is re-sent.

    ``max_attempts`` counts every try, the first included (Codex's ``request_max_retries = n``
    is ``max_attempts = n + 1``). Delays are seconds. Only establishing a stream is retried:
    once an event has reached the caller, failures surface as :class:`StreamError`.
    """

    max_attempts: int = attrs.field(default=5)
    base_delay: float = attrs.field(default=0.2)
    retry_429: bool = True
    retry_5xx: bool = True
    retry_transport: bool = True
    #: Upper bound for any single delay, server hints (``Retry-After``) included.
    max_delay: float = attrs.field(default=MAX_RETRY_DELAY)

    @max_attempts.validator
    def _check_attempts(self, _: Any, value: int) -> None:
        if value < 1:
            raise PolicyError("max_attempts counts the first try too; it must be >= 1")

    @base_delay.validator
    @max_delay.validator
    def _check_delay(self, attribute: attrs.Attribute[float], value: float) -> None:
        if not value >= 0.0:  # also refuses NaN
            raise PolicyError(f"{attribute.name} is seconds and must be >= 0, got {value!r}")

    @classmethod
    def from_codex(cls, request_max_retries: int = CODEX_REQUEST_MAX_RETRIES,
                   **kw: Any) -> RetryPolicy:
        """Codex's policy for ``request_max_retries`` (retries after the first try): the one
        place Codex's defaults are built (``config.toml`` providers use it too)."""
        kw.setdefault("base_delay", CODEX_BASE_DELAY)
        kw.setdefault("retry_429", False)
        kw.setdefault("retry_5xx", True)
        kw.setdefault("retry_transport", True)
        return cls(max_attempts=request_max_retries + 1, **kw)

    @classmethod
    def never(cls) -> RetryPolicy:
        """One try, no retries."""
        return cls(max_attempts=1)

    # --- decisions -------------------------------------------------------------------------
    def is_exhausted(self, attempt: int) -> bool:
        """Whether ``attempt`` tries (1-based) used up the policy."""
        return attempt >= self.max_attempts

    def retries_status(self, status: int) -> bool:
        """Whether a response with ``status`` may be retried under this policy."""
        if status == 429:
            return self.retry_429
        if status in RETRYABLE_4XX:
            return self.retry_transport
        return self.retry_5xx and 500 <= status <= 599

    def is_retryable(self, error: BaseException) -> bool:
        """Whether another try may succeed after ``error``, under this policy."""
        if not getattr(error, "retryable", False):
            return False  # the error knows it is final (a 407, a usage limit, a 4xx)
        if isinstance(error, ApiError):
            return self.retries_status(error.status)
        if isinstance(error, TransportError | IdleTimeout):
            return self.retry_transport
        if isinstance(error, RateLimitError):
            return self.retry_429
        if isinstance(error, StreamError):
            # response.failed with server_error, overloaded and friends: the server's fault,
            # like a 5xx.
            return self.retry_5xx
        return False

    def server_delay(self, error: BaseException, now: float | None = None) -> float | None:
        """The server's own hint for ``error``, in seconds, if it gave one (uncapped)."""
        if isinstance(error, ApiError):
            hint = retry_after_seconds(error.headers, now)
            if hint is None and error.status == 429:
                hint = parse_retry_after(error.message or "")
            return hint
        if isinstance(error, RateLimitError):
            return error.retry_after
        if isinstance(error, StreamError):
            return error.delay
        return None

    def backoff(self, attempt: int, rand: float | None = None) -> float:
        """codex-client's backoff after failed attempt ``attempt`` (1-based), capped.

        ``attempt <= 0`` gives ``base_delay`` exactly (the crate's ``backoff(base, 0)``).
        """
        if attempt <= 0:
            return min(self.base_delay, self.max_delay)
        jitter = 0.9 + 0.2 * (_random() if rand is None else rand)
        # 2**k overflows float only past ~1000 attempts; the cap makes the exact value moot.
        raw = self.base_delay * (2.0 ** min(attempt - 1, 1000)) * jitter
        if not math.isfinite(raw):
            return self.max_delay
        return min(math.floor(raw * 1000.0) / 1000.0, self.max_delay)

    def delay(self, attempt: int, error: BaseException, now: float | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` before the next: the server's hint,
        else the backoff; always within [0, ``max_delay``]."""
        hint = self.server_delay(error, now)
        if hint is not None and math.isfinite(hint) and hint > 0:
            return self.bounded(hint)
        return self.backoff(attempt)

    def bounded(self, delay: float) -> float:
        """``delay`` within [0, ``max_delay``] whatever it is (a plugin's answer: no negative,
        NaN or endless sleep; NaN fails every comparison, hence the explicit check)."""
        delay = float(delay)
        return min(max(delay, 0.0), self.max_delay) if delay == delay else 0.0

    def next_delay(self, attempt: int, error: BaseException, now: float | None = None
                   ) -> float | None:
        """:meth:`delay`, or None when ``error`` is final or the policy is exhausted."""
        if self.is_exhausted(attempt) or not self.is_retryable(error):
            return None
        return self.delay(attempt, error, now)


#: What kind of try failed: a request (no answer, or a retryable status), a turn sent again
#: because it failed before its first event, or a background stream resumed.
TryKind = Literal["request", "resend", "resume"]
#: A plugin's delay for try ``attempt`` that failed with ``error``, or None (the policy's).
DelayHook = Callable[[int, Exception], "float | None"]


@attrs.frozen
class Retries:
    """One call's retries so far under ``policy`` and ``stream_max_retries``; immutable.

    ``attempt`` is the 1-based try of the current request, ``resends`` how many times the
    turn was sent again or resumed.
    """

    policy: RetryPolicy
    stream_max_retries: int = 0
    attempt: int = 1
    resends: int = 0

    def again(self, error: Exception, kind: TryKind = "request",
              delay: DelayHook | None = None) -> tuple[Retries, float]:
        """After ``error`` ended a try of ``kind``: the next value and the seconds to wait
        first. Raises ``error`` (with its ``attempts``) when it is final or the budget is spent.

        ``delay`` (the ``codexapi_retry_delay`` hook) may give the wait instead of the policy;
        whatever it answers is kept within [0, ``max_delay``]."""
        policy = self.policy
        if kind == "request":
            if policy.is_exhausted(self.attempt) or not policy.is_retryable(error):
                raise _final(error, self.attempt)
            number = self.attempt
            following = attrs.evolve(self, attempt=self.attempt + 1)
        else:
            if (isinstance(error, DeadlineExceeded) or not getattr(error, "retryable", False)
                    or self.resends >= self.stream_max_retries):
                raise error
            number = self.resends + 1
            # The re-sent request's own failures are tried again under the policy afresh.
            following = attrs.evolve(self, attempt=1, resends=number)
        wait = delay(number, error) if delay is not None else None
        if wait is None:
            wait = policy.delay(number, error)
        return following, policy.bounded(wait)


def _final(error: Exception, attempts: int) -> Exception:
    """``error`` as the last of ``attempts`` tries."""
    if isinstance(error, ApiError):
        error.attempts = attempts
    elif isinstance(error, TransportError) and attempts > 1:
        error.attempts = attempts
        error.message = f"{error.message} (gave up after {attempts} attempts)"
    return error
