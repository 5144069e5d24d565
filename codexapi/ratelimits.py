"""What a server says about its limits in response headers.

- ``x-codex-*`` windows and credits -> :class:`RateLimitSnapshot`, as codex-api's
  ``rate_limits.rs`` parses them (one family per ``x-<name>-primary-used-percent`` header);
- OpenAI's ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` -> :class:`OpenAILimits`
  (the raw headers also stay in ``RateLimitSnapshot.openai``);
- ``retry-after-ms`` / ``Retry-After`` -> seconds (:func:`retry_after_seconds`);
- "try again in 1.5s" in a rate-limit message -> seconds (:func:`parse_retry_after`).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import UTC

import attrs

from .events import CreditsSnapshot, RateLimitSnapshot, RateLimitWindow


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        parsed = float(value.strip())
    except ValueError:
        return None
    return parsed if math.isfinite(parsed) else None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        parsed = _float(value)
        return int(parsed) if parsed is not None else None


def _bool(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    return None


def _window(h: Mapping[str, str], prefix: str, now: float | None) -> RateLimitWindow | None:
    # The crate keeps a window only when used-percent parses as a finite float.
    used = _float(h.get(f"{prefix}-used-percent"))
    if used is None:
        return None
    minutes = _int(h.get(f"{prefix}-window-minutes"))
    resets_at = _int(h.get(f"{prefix}-reset-at"))
    if resets_at is None:
        # Some gateways send a relative reset instead of an absolute one.
        relative = _int(h.get(f"{prefix}-resets-in-seconds"))
        if relative is None:
            relative = _int(h.get(f"{prefix}-reset-after-seconds"))
        if relative is not None:
            resets_at = int(time.time() if now is None else now) + relative
    if used == 0.0 and not minutes and resets_at is None:
        return None
    return RateLimitWindow(used, minutes, resets_at)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def parse_rate_limits(headers: Mapping[str, str], limit_id: str = "codex",
                      now: float | None = None) -> RateLimitSnapshot:
    """The snapshot for one limit family (``codex`` reads ``x-codex-*`` headers)."""
    h = _lower(headers)
    prefix = "x-" + limit_id.lower().replace("_", "-")
    # Credits are account-wide: every family reads the x-codex-credits-* headers, as the crate.
    has_credits = _bool(h.get("x-codex-credits-has-credits"))
    unlimited = _bool(h.get("x-codex-credits-unlimited"))
    credits = None
    if has_credits is not None and unlimited is not None:
        balance = (h.get("x-codex-credits-balance") or "").strip() or None
        credits = CreditsSnapshot(has_credits, unlimited, balance)
    name = (h.get(f"{prefix}-limit-name") or "").strip() or None
    openai = {k: v for k, v in h.items() if k.startswith("x-ratelimit-")}
    return RateLimitSnapshot(
        limit_id=limit_id,
        limit_name=name,
        primary=_window(h, f"{prefix}-primary", now),
        secondary=_window(h, f"{prefix}-secondary", now),
        credits=credits,
        openai=openai if limit_id == "codex" else {},
    )


def parse_rate_limit_updates(headers: Mapping[str, str]) -> list[RateLimitSnapshot]:
    """``codex`` first (even when empty), then every other family with data, sorted by id, as
    the crate's ``parse_rate_limit_updates``."""
    h = _lower(headers)
    families = set()
    for name in h:
        if name.startswith("x-") and name.endswith("-primary-used-percent"):
            family = name[2 : -len("-primary-used-percent")].strip().replace("-", "_")
            if family and family != "codex":
                families.add(family)
    out = [parse_rate_limits(h, "codex")]
    for family in sorted(families):
        snap = parse_rate_limits(h, family)
        if snap.primary or snap.secondary or snap.credits:
            out.append(snap)
    return out


def has_data(snap: RateLimitSnapshot) -> bool:
    """Whether a snapshot says anything (a window, credits, a name or OpenAI limits)."""
    return bool(snap.primary or snap.secondary or snap.credits or snap.openai
                or snap.limit_name)


def parse_all_rate_limits(headers: Mapping[str, str]) -> list[RateLimitSnapshot]:
    """One snapshot per limit family that has data (``codex`` first), e.g. ``x-codex-*`` and
    ``x-codex-other-*`` give ``codex`` and ``codex_other``."""
    return [s for s in parse_rate_limit_updates(headers) if has_data(s)]


def _event_window(value: object) -> RateLimitWindow | None:
    if not isinstance(value, dict):
        return None
    used = value.get("used_percent")
    if isinstance(used, bool) or not isinstance(used, int | float):
        return None
    minutes, reset = value.get("window_minutes"), value.get("reset_at")
    return RateLimitWindow(float(used), minutes if isinstance(minutes, int) else None,
                           reset if isinstance(reset, int) else None)


def parse_rate_limit_event(event: Mapping[str, object]) -> RateLimitSnapshot | None:
    """The snapshot in a ``codex.rate_limits`` event (WebSocket), or None if it is not one."""
    if event.get("type") != "codex.rate_limits":
        return None
    details = event.get("rate_limits")
    primary = secondary = None
    if isinstance(details, dict):
        primary = _event_window(details.get("primary"))
        secondary = _event_window(details.get("secondary"))
    credits = None
    raw = event.get("credits")
    if isinstance(raw, dict) and isinstance(raw.get("has_credits"), bool) and isinstance(
            raw.get("unlimited"), bool):
        balance = raw.get("balance")
        credits = CreditsSnapshot(bool(raw["has_credits"]), bool(raw["unlimited"]),
                                  balance if isinstance(balance, str) else None)
    name = event.get("metered_limit_name") or event.get("limit_name")
    limit_id = (name.strip().lower().replace("-", "_") if isinstance(name, str) and name.strip()
                else "codex")
    plan = event.get("plan_type")
    return RateLimitSnapshot(limit_id=limit_id, primary=primary, secondary=secondary,
                             credits=credits, plan_type=plan if isinstance(plan, str) else None)


def snapshot_if_any(headers: Mapping[str, str]) -> RateLimitSnapshot | None:
    """The ``codex`` snapshot when the response carried any rate-limit information.

    The Chat-era crate emitted ``RateLimits`` only when a field was present; we do the same,
    so a server that says nothing about limits adds no event.
    """
    snap = parse_rate_limits(headers)
    if snap.primary or snap.secondary or snap.credits or snap.openai or snap.limit_name:
        return snap
    return None


# --- OpenAI x-ratelimit-* ---------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str | None) -> float | None:
    """OpenAI's reset durations (``"1s"``, ``"6m0s"``, ``"20ms"``, ``"1h2m3.5s"``) in seconds."""
    if value is None:
        return None
    text = value.strip().lower()
    if not text:
        return None
    plain = _float(text)
    if plain is not None:
        return max(plain, 0.0)
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        number, unit = float(match.group(1)), match.group(2)
        total += number * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
        pos = match.end()
    return total if pos == len(text) else None


@attrs.frozen
class OpenAILimits:
    """OpenAI's per-request view of its limits (``x-ratelimit-*``); missing values are None."""

    limit_requests: int | None = None
    remaining_requests: int | None = None
    #: Seconds until the request budget refills.
    reset_requests: float | None = None
    limit_tokens: int | None = None
    remaining_tokens: int | None = None
    #: Seconds until the token budget refills.
    reset_tokens: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> OpenAILimits | None:
        """The limits, or None when no ``x-ratelimit-*`` header is present."""
        h = _lower(headers)
        if not any(k.startswith("x-ratelimit-") for k in h):
            return None
        return cls(
            limit_requests=_int(h.get("x-ratelimit-limit-requests")),
            remaining_requests=_int(h.get("x-ratelimit-remaining-requests")),
            reset_requests=parse_duration(h.get("x-ratelimit-reset-requests")),
            limit_tokens=_int(h.get("x-ratelimit-limit-tokens")),
            remaining_tokens=_int(h.get("x-ratelimit-remaining-tokens")),
            reset_tokens=parse_duration(h.get("x-ratelimit-reset-tokens")),
        )


def openai_limits(snapshot: RateLimitSnapshot | None) -> OpenAILimits | None:
    """The parsed ``x-ratelimit-*`` headers a snapshot kept, if any."""
    return OpenAILimits.from_headers(snapshot.openai) if snapshot is not None else None


# --- Retry-After ----------------------------------------------------------------------------


def _seconds(value: str) -> float | None:
    # Zero or negative asks for an immediate retry, which a server that is failing cannot
    # mean usefully: treated as no hint, so the policy's backoff applies.
    parsed = _float(value)
    return parsed if parsed is not None and parsed > 0 else None


def _http_date_delay(value: str, now: float) -> float | None:
    import email.utils  # here, not at import: HTTP-date Retry-After values are rare

    try:
        when = email.utils.parsedate_to_datetime(value.strip())
        if when.tzinfo is None:
            # RFC 9110 dates are GMT; "-0000" parses as naive, which must not mean local time.
            when = when.replace(tzinfo=UTC)
        delay = when.timestamp() - now
        return delay if math.isfinite(delay) and delay > 0 else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The server's retry hint in seconds: ``retry-after-ms`` (OpenAI's precise form) first,
    then ``Retry-After`` as delta-seconds or an HTTP date (RFC 9110 §10.2.3). Unparseable,
    infinite, zero or negative values (a date in the past) count as absent, so the policy's
    backoff applies. Finite but not capped: that is the retry policy's job."""
    h = _lower(headers)
    ms = h.get("retry-after-ms")
    if ms is not None:
        value = _seconds(ms)
        if value is not None:
            return value / 1000.0
    after = h.get("retry-after")
    if after is not None:
        value = _seconds(after)
        if value is not None:
            return value
        return _http_date_delay(after, time.time() if now is None else now)
    return None


__all__ = [
    "OpenAILimits",
    "has_data",
    "openai_limits",
    "parse_all_rate_limits",
    "parse_duration",
    "parse_rate_limit_event",
    "parse_rate_limit_updates",
    "parse_rate_limits",
    "retry_after_seconds",
    "snapshot_if_any",
]


_RETRY_AFTER = re.compile(r"try again in\s*(\d+(?:\.\d+)?)\s*(s|ms|seconds?)", re.IGNORECASE)


def parse_retry_after(message: str) -> float | None:
    """Seconds from "try again in 1.5s / 28ms / 35 seconds" in a rate-limit message (the form
    OpenAI puts in 429 bodies and ``rate_limit_exceeded`` stream failures)."""
    match = _RETRY_AFTER.search(message)
    if not match:
        return None
    value, unit = float(match.group(1)), match.group(2).lower()
    if not math.isfinite(value) or value <= 0:
        return None  # "try again in 999…9s" is no hint; neither is 0
    # The crate truncates milliseconds to whole ms.
    return int(value) / 1000.0 if unit == "ms" else value
