"""Events a Responses reply carries in its headers (HTTP response or WebSocket upgrade).

They come before the body's first event, in the crate's order (``spawn_response_stream``):
the serving model, one rate-limit snapshot per limit family with data, the models ETag, and
whether past reasoning is already accounted for.
"""

from __future__ import annotations

from collections.abc import Mapping

from .events import Event, ModelsEtag, RateLimits, ServerModel, ServerReasoningIncluded
from .ratelimits import parse_all_rate_limits

TURN_STATE_HEADER = "x-codex-turn-state"
SAFETY_FASTER_MODEL_HEADER = "x-codex-safety-buffering-faster-model"


def header_events(headers: Mapping[str, str]) -> list[Event]:
    """The header-born events of one reply. ``headers`` lookups must be case-insensitive
    (urllib3's are) or use lower-case names."""
    events: list[Event] = []
    model = headers.get("openai-model")
    if model:
        events.append(ServerModel(model))
    events.extend(RateLimits(s) for s in parse_all_rate_limits(headers))
    etag = headers.get("x-models-etag")
    if etag:
        events.append(ModelsEtag(etag))
    if headers.get("x-reasoning-included") is not None:
        events.append(ServerReasoningIncluded(True))
    return events


__all__ = ["SAFETY_FASTER_MODEL_HEADER", "TURN_STATE_HEADER", "header_events"]
