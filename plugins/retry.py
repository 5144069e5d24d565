"""First-party retry policy: codex-client's backoff, honouring the server's timing hints.

Retried: connect errors and resets before any response byte, 429 and 5xx, each as the
provider's :class:`codexapi.RetryPolicy` allows. Never another 4xx. The delay is the server's
``retry-after-ms`` / ``Retry-After`` (seconds or HTTP date) or its "try again in 1.5s" message
when given, else exponential backoff from ``base_delay`` with ±10 % jitter; always capped by
``max_delay``.
"""

from __future__ import annotations

import email.utils
import random
import time

from codexapi import hookimpl
from codexapi.errors import ApiError, TransportError
from codexapi.models import Provider, RetryPolicy

from .wire_responses import parse_retry_after


def backoff(policy: RetryPolicy, attempt: int, rand: float | None = None) -> float:
    """Delay after failed attempt ``attempt`` (1-based): base * 2**(attempt-1) * [0.9, 1.1)."""
    jitter = 0.9 + 0.2 * (random.random() if rand is None else rand)
    return min(policy.base_delay * (2 ** (attempt - 1)) * jitter, policy.max_delay)


def server_delay(error: ApiError, now: float | None = None) -> float | None:
    """The server's own hint, in seconds, if it gave one."""
    headers = {k.lower(): v for k, v in error.headers.items()}
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(float(ms) / 1000.0, 0.0)
        except ValueError:
            pass
    after = headers.get("retry-after")
    if after is not None:
        after = after.strip()
        try:
            return max(float(after), 0.0)
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(after) if after else None
            if parsed is not None:
                current = time.time() if now is None else now
                return max(parsed.timestamp() - current, 0.0)
    if error.status == 429:
        return parse_retry_after(error.message or "")
    return None


def is_retryable(policy: RetryPolicy, error: Exception) -> bool:
    if isinstance(error, ApiError):
        if error.status == 429:
            return policy.retry_429
        return policy.retry_5xx and 500 <= error.status <= 599
    return isinstance(error, TransportError) and policy.retry_transport


@hookimpl
def codexapi_retry_delay(provider: Provider, attempt: int, error: Exception) -> float | None:
    policy = provider.retry
    if attempt >= policy.max_attempts or not is_retryable(policy, error):
        return None
    hint = None
    if isinstance(error, ApiError):
        try:
            hint = server_delay(error)
        except (TypeError, ValueError, OverflowError):
            hint = None
    if hint is not None:
        return min(hint, policy.max_delay)
    return backoff(policy, attempt)
