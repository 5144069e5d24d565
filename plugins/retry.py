"""First-party retry plugin: the delay before a call is tried again is the provider's
:class:`codexapi.RetryPolicy`'s.

Whether a call is tried again is decided by the call's :class:`codexapi.retry.Retries` (the
policy for requests, ``Provider.stream_max_retries`` for re-sends and resumes); this plugin
only answers ``codexapi_retry_delay`` with the policy's delay, so a plugin of yours can answer
first with its own. The functions below are kept for callers of earlier versions.
"""

from __future__ import annotations

from collections.abc import Mapping

from codexapi import Provider, RetryPolicy, hookimpl
from codexapi.plugin_api import retry_after_seconds


@hookimpl
def codexapi_retry_delay(provider: Provider, attempt: int, error: Exception) -> float | None:
    return provider.retry.delay(attempt, error)


def backoff(policy: RetryPolicy, attempt: int, rand: float | None = None) -> float:
    """:meth:`RetryPolicy.backoff`."""
    return policy.backoff(attempt, rand)


def header_delay(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (delta-seconds or HTTP date)."""
    return retry_after_seconds(headers, now)


def retry_delay(policy: RetryPolicy, attempt: int, error: Exception,
                now: float | None = None) -> float | None:
    """:meth:`RetryPolicy.next_delay`: seconds before try ``attempt + 1``, or None."""
    return policy.next_delay(attempt, error, now)
