"""First-party retry policy: codex-client's backoff, honouring the server's timing hints.

Retried, as the provider's :class:`codexapi.RetryPolicy` allows: connect errors and resets
before any response byte (``retry_transport``), 429 (``retry_429``) and 500-599
(``retry_5xx``). Never another 4xx: the same request would fail the same way.

The delay is the server's hint when it gave one — ``retry-after-ms``, then ``Retry-After``
(seconds or an HTTP date, RFC 9110 §10.2.3), then a "Please try again in 1.5s / 28ms" message
(the form OpenAI puts in 429 bodies and ``rate_limit_exceeded`` stream failures) — else
codex-client's exponential backoff: ``base_delay * 2**(attempt-1)`` times a jitter factor in
[0.9, 1.1), floored to whole milliseconds (``codex-client/src/retry.rs``). Every delay is capped
by ``max_delay``, so a hostile or confused server cannot park a client for hours.

Stream-level failures (:class:`codexapi.StreamError`) are answered too, for callers that
re-send a turn themselves: the dispatcher never re-sends a stream whose events were yielded.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping

from codexapi import hookimpl
from codexapi.errors import (
    ApiError,
    CodexApiError,
    IdleTimeout,
    RateLimitError,
    ServerOverloaded,
    StreamError,
    TransportError,
)
from codexapi.failures import parse_retry_after
from codexapi.models import Provider, RetryPolicy
from codexapi.ratelimits import retry_after_seconds

#: Source of jitter in [0, 1); tests pass their own ``rand`` to :func:`backoff` instead.
_random: Callable[[], float] = random.random


def backoff(policy: RetryPolicy, attempt: int, rand: float | None = None) -> float:
    """Delay after failed attempt ``attempt`` (1-based), capped by ``max_delay``.

    ``attempt <= 0`` gives ``base_delay`` exactly (the crate's ``backoff(base, 0)``).
    """
    if attempt <= 0:
        return min(policy.base_delay, policy.max_delay)
    jitter = 0.9 + 0.2 * (_random() if rand is None else rand)
    # 2**k overflows float only past ~1000 attempts; the cap makes the exact value moot.
    raw = policy.base_delay * (2.0 ** min(attempt - 1, 1000)) * jitter
    if not math.isfinite(raw):
        return policy.max_delay
    return min(math.floor(raw * 1000.0) / 1000.0, policy.max_delay)


def header_delay(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (delta-seconds or HTTP date)."""
    return retry_after_seconds(headers, now)


def server_delay(error: Exception, now: float | None = None) -> float | None:
    """The server's own hint for ``error``, in seconds, if it gave one (uncapped)."""
    if isinstance(error, ApiError):
        hint = header_delay(error.headers, now)
        if hint is None and error.status == 429:
            hint = parse_retry_after(error.message or "")
        return hint
    if isinstance(error, RateLimitError):
        return error.retry_after
    if isinstance(error, StreamError):
        return error.delay
    return None


def is_retryable(policy: RetryPolicy, error: Exception) -> bool:
    """Whether ``policy`` allows another try after ``error``."""
    if isinstance(error, CodexApiError) and not error.retryable:
        # Usage limits, quotas, policy refusals...: the same request fails the same way.
        return False
    if isinstance(error, ApiError):
        return policy.retries_status(error.status)
    if isinstance(error, TransportError | IdleTimeout):
        return policy.retry_transport
    if isinstance(error, RateLimitError):
        return policy.retry_429
    if isinstance(error, ServerOverloaded):
        return policy.retry_5xx
    if isinstance(error, StreamError):
        # response.failed with server_error and friends: the server's fault, like a 5xx.
        return error.retryable and policy.retry_5xx
    return False


def retry_delay(policy: RetryPolicy, attempt: int, error: Exception,
                now: float | None = None) -> float | None:
    """Seconds to wait before try ``attempt + 1``, or None when ``error`` is final."""
    if attempt >= policy.max_attempts or not is_retryable(policy, error):
        return None
    hint = server_delay(error, now)
    if hint is not None and math.isfinite(hint):
        return min(max(hint, 0.0), policy.max_delay)
    return backoff(policy, attempt)


@hookimpl
def codexapi_retry_delay(provider: Provider, attempt: int, error: Exception) -> float | None:
    return retry_delay(provider.retry, attempt, error)
