"""What a stream yields: one set of typed events, whichever wire produced them.

Events are frozen, slotted attrs classes tagged by a ``type`` class attribute. Output items are
the typed items of :mod:`codexapi.items` (:class:`~codexapi.items.FunctionCall`,
:class:`~codexapi.items.Message`...) or a generic :class:`Item`: their JSON fields read as
attributes and the original dict stays in ``.raw``, so an item type this library has never
heard of loses nothing.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Mapping
from itertools import repeat
from typing import Any, ClassVar

import attrs

from .items import Item


@attrs.frozen
class TokenUsage:
    """Token counts for one response, in the crate's names."""

    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    total_tokens: int = 0


@attrs.frozen
class RateLimitWindow:
    used_percent: float
    window_minutes: int | None = None
    resets_at: int | None = None


@attrs.frozen
class CreditsSnapshot:
    has_credits: bool
    unlimited: bool
    balance: str | None = None


@attrs.frozen
class RateLimitSnapshot:
    """Rate-limit state reported by the server's response headers."""

    limit_id: str = "codex"
    limit_name: str | None = None
    primary: RateLimitWindow | None = None
    secondary: RateLimitWindow | None = None
    credits: CreditsSnapshot | None = None
    #: The account's plan, when the server said (``codex.rate_limits`` events).
    plan_type: str | None = None
    #: OpenAI ``x-ratelimit-*`` headers, when the server sent them (name -> value).
    openai: Mapping[str, str] = attrs.field(factory=dict)


class Event:
    """Base class of stream events; ``type`` tags each concrete class."""

    __slots__ = ()
    type: ClassVar[str] = ""


@attrs.frozen
class Created(Event):
    #: The id from ``response.created`` (None when the server sent none).
    response_id: str | None = None
    type: ClassVar[str] = "created"


@attrs.frozen
class OutputItemAdded(Event):
    item: Item
    type: ClassVar[str] = "output_item_added"


@attrs.frozen
class OutputItemDone(Event):
    item: Item
    type: ClassVar[str] = "output_item_done"


@attrs.frozen
class OutputTextDelta(Event):
    delta: str
    type: ClassVar[str] = "output_text_delta"


@attrs.frozen
class ReasoningSummaryDelta(Event):
    delta: str
    summary_index: int
    type: ClassVar[str] = "reasoning_summary_delta"


@attrs.frozen
class ReasoningContentDelta(Event):
    delta: str
    content_index: int
    type: ClassVar[str] = "reasoning_content_delta"


@attrs.frozen
class ReasoningSummaryPartAdded(Event):
    summary_index: int
    type: ClassVar[str] = "reasoning_summary_part_added"


@attrs.frozen
class ReasoningSummaryDone(Event):
    """A reasoning summary part is complete (``response.reasoning_summary_text.done``)."""

    item_id: str
    text: str
    summary_index: int
    type: ClassVar[str] = "reasoning_summary_done"


@attrs.frozen
class ToolCallInputDelta(Event):
    """A piece of a tool call's input as it streams (custom tool input, function arguments)."""

    item_id: str
    call_id: str | None
    delta: str
    type: ClassVar[str] = "tool_call_input_delta"


@attrs.frozen
class RateLimits(Event):
    snapshot: RateLimitSnapshot
    type: ClassVar[str] = "rate_limits"


@attrs.frozen
class ServerModel(Event):
    """The model the server actually used (``openai-model``), which routing may change."""

    model: str
    type: ClassVar[str] = "server_model"


@attrs.frozen
class ModelsEtag(Event):
    """The models list's current ETag (``x-models-etag``), exactly as the server sent it."""

    etag: str
    type: ClassVar[str] = "models_etag"


@attrs.frozen
class ServerReasoningIncluded(Event):
    """``x-reasoning-included`` was present: past reasoning tokens are already accounted for."""

    included: bool
    type: ClassVar[str] = "server_reasoning_included"


def _strings(value: Iterable[str]) -> tuple[str, ...]:
    # Not ``converter=tuple``: attrs reads a converter's signature, and a builtin's is parsed
    # from its text (the tokenizer's regexes compiled, ast), milliseconds of every start.
    return tuple(value)


@attrs.frozen
class ModelVerifications(Event):
    """Account verifications the server recommends (``response.metadata``), e.g.
    ``"trusted_access_for_cyber"``."""

    verifications: tuple[str, ...] = attrs.field(converter=_strings)
    type: ClassVar[str] = "model_verifications"


@attrs.frozen
class TurnModerationMetadata(Event):
    """Moderation metadata the server attached to the turn (``response.metadata``)."""

    metadata: Any
    type: ClassVar[str] = "turn_moderation_metadata"


@attrs.frozen
class SafetyBuffering(Event):
    """The server is holding output back for a safety review; ``faster_model`` is the model
    it suggests retrying with, if any."""

    use_cases: tuple[str, ...] = attrs.field(converter=_strings)
    reasons: tuple[str, ...] = attrs.field(converter=_strings)
    faster_model: str | None = None
    show_buffering_ui: bool = True
    type: ClassVar[str] = "safety_buffering"


@attrs.frozen
class Completed(Event):
    response_id: str
    token_usage: TokenUsage | None = None
    #: The server's ``end_turn`` flag (None when absent).
    end_turn: bool | None = None
    type: ClassVar[str] = "completed"


def _fast_one_field(cls: type[Event], field: str) -> Callable[[Any], Any]:
    """A constructor for a one-field event that skips attrs' frozen ``__init__``.

    The result is indistinguishable from ``cls(value)`` (same class, slot, equality, hash,
    immutability); it only sets the slot through its descriptor instead of going through
    ``object.__setattr__`` by name, which halves the cost of the hot path's commonest event.
    """
    new = object.__new__
    set_slot = cls.__dict__[field].__set__

    def make(value: Any) -> Any:
        event = new(cls)
        set_slot(event, value)
        return event

    return make


def _fast_many(cls: type[Event], field: str) -> Callable[[list[Any]], list[Any]]:
    """A constructor of many one-field events at once, each as :func:`_fast_one_field` makes
    it. Both steps run in C (``map``), with no Python frame per event: a run of text deltas
    costs about two thirds of building them one by one."""
    new = object.__new__
    set_slot = cls.__dict__[field].__set__

    def make_all(values: list[Any]) -> list[Any]:
        events = list(map(new, repeat(cls, len(values))))
        deque(map(set_slot, events, values), 0)
        return events

    return make_all


#: ``new_output_text_delta(delta)`` equals ``OutputTextDelta(delta)``; for wire decoders.
new_output_text_delta: Callable[[str], OutputTextDelta] = _fast_one_field(
    OutputTextDelta, "delta")
#: ``new_output_text_deltas(deltas)`` equals ``[OutputTextDelta(d) for d in deltas]``.
new_output_text_deltas: Callable[[list[str]], list[OutputTextDelta]] = _fast_many(
    OutputTextDelta, "delta")


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        Created,
        OutputItemAdded,
        OutputItemDone,
        OutputTextDelta,
        ReasoningSummaryDelta,
        ReasoningContentDelta,
        ReasoningSummaryPartAdded,
        ReasoningSummaryDone,
        ToolCallInputDelta,
        RateLimits,
        ServerModel,
        ModelsEtag,
        ServerReasoningIncluded,
        ModelVerifications,
        TurnModerationMetadata,
        SafetyBuffering,
        Completed,
    )
}

__all__ = [
    "EVENT_TYPES",
    "Completed",
    "Created",
    "CreditsSnapshot",
    "Event",
    "Item",
    "ModelVerifications",
    "ModelsEtag",
    "OutputItemAdded",
    "OutputItemDone",
    "OutputTextDelta",
    "RateLimitSnapshot",
    "RateLimitWindow",
    "RateLimits",
    "ReasoningContentDelta",
    "ReasoningSummaryDelta",
    "ReasoningSummaryDone",
    "ReasoningSummaryPartAdded",
    "SafetyBuffering",
    "ServerModel",
    "ServerReasoningIncluded",
    "TokenUsage",
    "ToolCallInputDelta",
    "TurnModerationMetadata",
]
