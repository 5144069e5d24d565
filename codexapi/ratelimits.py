"""Rate-limit snapshots from response headers (codex-api ``rate_limits.rs``, plus OpenAI's
``x-ratelimit-*`` headers)."""

from __future__ import annotations

import math
from collections.abc import Mapping

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


def _window(h: Mapping[str, str], prefix: str) -> RateLimitWindow | None:
    used = _float(h.get(f"{prefix}-used-percent"))
    if used is None:
        return None
    minutes = _int(h.get(f"{prefix}-window-minutes"))
    resets_at = _int(h.get(f"{prefix}-reset-at"))
    if resets_at is None:
        # Some gateways send a relative reset instead of an absolute one.
        relative = _int(h.get(f"{prefix}-resets-in-seconds")) or _int(
            h.get(f"{prefix}-reset-after-seconds"))
        if relative is not None:
            import time

            resets_at = int(time.time()) + relative
    if used == 0.0 and not minutes and resets_at is None:
        return None
    return RateLimitWindow(used, minutes, resets_at)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def parse_rate_limits(headers: Mapping[str, str], limit_id: str = "codex") -> RateLimitSnapshot:
    """The snapshot for one limit family (``codex`` reads ``x-codex-*`` headers)."""
    h = _lower(headers)
    prefix = "x-" + limit_id.lower().replace("_", "-")
    has_credits = _bool(h.get(f"{prefix}-credits-has-credits"))
    unlimited = _bool(h.get(f"{prefix}-credits-unlimited"))
    credits = None
    if has_credits is not None and unlimited is not None:
        balance = (h.get(f"{prefix}-credits-balance") or "").strip() or None
        credits = CreditsSnapshot(has_credits, unlimited, balance)
    name = (h.get(f"{prefix}-limit-name") or "").strip() or None
    openai = {k: v for k, v in h.items() if k.startswith("x-ratelimit-")}
    return RateLimitSnapshot(
        limit_id=limit_id,
        limit_name=name,
        primary=_window(h, f"{prefix}-primary"),
        secondary=_window(h, f"{prefix}-secondary"),
        credits=credits,
        openai=openai if limit_id == "codex" else {},
    )


def parse_rate_limit_updates(headers: Mapping[str, str]) -> list[RateLimitSnapshot]:
    """One snapshot per family present (``codex`` always first, even when empty)."""
    h = _lower(headers)
    ids = ["codex"]
    for name in h:
        if name.startswith("x-") and name.endswith("-primary-used-percent"):
            family = name[2 : -len("-primary-used-percent")].replace("-", "_")
            if family and family not in ids:
                ids.append(family)
    return [parse_rate_limits(h, i) for i in ids]


def snapshot_if_any(headers: Mapping[str, str]) -> RateLimitSnapshot | None:
    """The ``codex`` snapshot when the response carried any rate-limit information."""
    snap = parse_rate_limits(headers)
    if snap.primary or snap.secondary or snap.credits or snap.openai or snap.limit_name:
        return snap
    return None
