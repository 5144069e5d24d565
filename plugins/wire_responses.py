"""The Responses wire: ``POST responses`` bodies and the Responses SSE decoder, registered as
the Wire ``"responses"`` (``WireApi.RESPONSES``).

Follows codex-rs/codex-api ``requests/responses.rs`` (body) and ``sse/responses.rs`` (events),
in its newer form where ``Completed`` is delivered as soon as ``response.completed`` arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from codexapi import hookimpl
from codexapi.convert import item_to_json, options_to_json
from codexapi.errors import (
    ContextWindowExceeded,
    InvalidRequest,
    QuotaExceeded,
    RateLimitError,
    ServerOverloaded,
    StreamError,
    UnsupportedEndpointError,
    UsageNotIncluded,
)
from codexapi.events import (
    Completed,
    Created,
    Event,
    OutputItemAdded,
    OutputItemDone,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    TokenUsage,
    new_output_text_delta,
)
from codexapi.items import item_from_json
from codexapi.jsonutil import loads
from codexapi.models import Provider, ResponsesRequest, WireApi
from codexapi.ratelimits import parse_retry_after
from codexapi.sse import SseMessage, SseStreamDecoder

PATHS = {"stream": "responses", "compact": "responses/compact", "models": "models"}


class ResponsesWire:
    """The Responses API over HTTP + SSE. ``bind(provider)`` gives the copy a Client uses (the
    body depends on whether the provider is Azure)."""

    name = WireApi.RESPONSES.value

    def __init__(self, provider: Provider | None = None) -> None:
        self.provider = provider if provider is not None else Provider()

    def bind(self, provider: Provider) -> ResponsesWire:
        return type(self)(provider)

    def path(self, endpoint: str) -> str:
        try:
            return PATHS[endpoint]
        except KeyError:
            raise UnsupportedEndpointError(f"the responses wire has no {endpoint!r} endpoint"
                                           ) from None

    def body(self, endpoint: str, request: Any) -> dict[str, Any]:
        if not isinstance(request, ResponsesRequest):
            raise InvalidRequest(f"the responses wire builds bodies from a ResponsesRequest, "
                                 f"not {type(request).__name__}")
        if endpoint == "stream":
            return build_body(self.provider, request)
        if endpoint == "compact":
            # CompactionInput serializes exactly these three fields, in this order.
            return {
                "model": request.model,
                "input": [_input_item(i, keep_id=False) for i in request.input],
                "instructions": request.instructions,
            }
        raise UnsupportedEndpointError(f"the responses wire sends no body to {endpoint!r}")

    def decoder(self, endpoint: str) -> SseStreamDecoder:
        if endpoint != "stream":
            raise UnsupportedEndpointError(f"the responses wire streams only 'stream', not "
                                           f"{endpoint!r}")
        return SseStreamDecoder(ResponsesDecoder())

    def __repr__(self) -> str:
        return f"ResponsesWire(provider={self.provider.name!r})"


WIRE = ResponsesWire()


@hookimpl
def codexapi_register_wires(register: Callable[[Any], None]) -> None:
    register(WIRE)


def _input_item(item: Any, keep_id: bool) -> dict[str, Any]:
    if isinstance(item, dict):
        return dict(item)  # the caller's JSON, sent as given (unknown types included)
    out = item_to_json(item)
    # ResponseItem serialization skips ids; Azure with store=true re-attaches non-empty ones.
    ident = out.pop("id", None)
    if keep_id and ident:
        out["id"] = ident
    return out


def build_body(provider: Provider, request: ResponsesRequest) -> dict[str, Any]:
    """The ``POST responses`` body, field for field as codex-api serializes it."""
    azure = provider.is_azure_responses_endpoint()
    store = request.store if request.store is not None else azure
    keep_ids = store and azure
    body: dict[str, Any] = {
        "model": request.model,
        "instructions": request.instructions,
        "input": [_input_item(i, keep_ids) for i in request.input],
        "tools": [dict(t) for t in request.tools],
        "tool_choice": request.tool_choice,
        "parallel_tool_calls": request.parallel_tool_calls,
        "reasoning": options_to_json(request.reasoning),
        "store": store,
        "stream": True,
        "include": list(request.include),
    }
    if request.prompt_cache_key is not None:
        body["prompt_cache_key"] = request.prompt_cache_key
    if request.text is not None:
        body["text"] = options_to_json(request.text)
    return body


# --- decoding -------------------------------------------------------------------------------

def failure_error(response: Any) -> Exception:
    """The typed error for a ``response.failed`` event's ``response`` object."""
    error = response.get("error") if isinstance(response, dict) else None
    if not isinstance(error, dict):
        return StreamError("response.failed event received")
    code = error.get("code")
    message = error.get("message") if isinstance(error.get("message"), str) else ""
    if code == "context_length_exceeded":
        return ContextWindowExceeded(server_message=message)
    if code == "insufficient_quota":
        return QuotaExceeded(server_message=message)
    if code == "usage_not_included":
        return UsageNotIncluded(server_message=message)
    if code == "invalid_prompt":
        return InvalidRequest(message or "Invalid request.")
    if code in ("server_is_overloaded", "slow_down"):
        return ServerOverloaded(message)
    if code == "rate_limit_exceeded":
        return RateLimitError(message, retry_after=parse_retry_after(message))
    return StreamError(message or f"response.failed with code {code!r}", retryable=True)


def token_usage(usage: Any) -> TokenUsage | None:
    """Map ``response.usage``; raises KeyError/TypeError on a malformed object."""
    if usage is None:
        return None
    in_details = usage.get("input_tokens_details") or {}
    out_details = usage.get("output_tokens_details") or {}
    return TokenUsage(
        input_tokens=int(usage["input_tokens"]),
        cached_input_tokens=int(in_details.get("cached_tokens") or 0),
        output_tokens=int(usage["output_tokens"]),
        reasoning_output_tokens=int(out_details.get("reasoning_tokens") or 0),
        total_tokens=int(usage["total_tokens"]),
    )


def _completed(response: Any) -> Completed:
    try:
        rid = response["id"]
        if not isinstance(rid, str):
            raise TypeError("`id` is not a string")
        return Completed(rid, token_usage(response.get("usage")))
    except KeyError as exc:
        raise StreamError(f"failed to parse ResponseCompleted: missing field `{exc.args[0]}`",
                          retryable=False) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise StreamError(f"failed to parse ResponseCompleted: {exc}", retryable=False) from None


class ResponsesDecoder:
    """Responses SSE messages -> events. Errors in the stream are kept and raised at the end,
    unless ``response.completed`` arrives (then it wins), as in codex-api."""

    __slots__ = ("_error", "_skipped", "done")

    def __init__(self) -> None:
        self.done = False
        self._error: Exception | None = None
        self._skipped: str | None = None

    def feed(self, message: SseMessage) -> list[Event]:
        return self.feed_data((message.data,))

    def feed_data(self, datas: Iterable[str | bytes]) -> list[Event]:
        """The events of several messages' ``data`` (text or UTF-8 bytes), in order; stops
        after the message that completes the response, as the stream does."""
        out: list[Event] = []
        append = out.append
        for data in datas:
            if not data:
                continue
            try:
                obj = loads(data)
                kind = obj["type"]
            except Exception:
                obj = self._undecodable(data)
                if obj is None:
                    continue
                kind = obj["type"]
            # The commonest event by far, handled inline.
            if kind == "response.output_text.delta":
                delta = obj.get("delta")
                if delta.__class__ is str:
                    append(new_output_text_delta(delta))
                continue
            handler = _HANDLERS.get(kind) if kind.__class__ is str else None
            if handler is None:
                continue
            events = handler(self, obj)
            if events:
                out.extend(events)
                if self.done:
                    break
        return out

    def _undecodable(self, data: str | bytes) -> Any:
        if isinstance(data, bytes):
            # Bytes straight off the wire: a message that is not valid UTF-8 reads as the text
            # decoder would have produced it (U+FFFD for each bad sequence).
            data = data.decode("utf-8", "replace")
            try:
                obj = loads(data)
                obj["type"]
                return obj
            except Exception:
                pass
        # The crate skips undecodable events; remember the first so a stream that then
        # fails to complete says why.
        if self._skipped is None:
            self._skipped = _describe_bad_event(data)
        return None

    def close(self) -> list[Event]:
        if self.done:
            return []
        if self._error is not None:
            raise self._error
        message = "stream closed before response.completed"
        if self._skipped:
            message += f" ({self._skipped})"
        raise StreamError(message)

    # Each handler takes the decoded event object and returns the events it produces.
    def _created(self, obj: dict[str, Any]) -> list[Event]:
        return [Created()] if "response" in obj else []

    def _item_added(self, obj: dict[str, Any]) -> list[Event]:
        item = obj.get("item")
        if isinstance(item, dict) and "type" in item:
            return [OutputItemAdded(item_from_json(item))]
        return []

    def _item_done(self, obj: dict[str, Any]) -> list[Event]:
        item = obj.get("item")
        if isinstance(item, dict) and "type" in item:
            return [OutputItemDone(item_from_json(item))]
        return []

    def _summary_delta(self, obj: dict[str, Any]) -> list[Event]:
        delta, index = obj.get("delta"), obj.get("summary_index")
        if isinstance(delta, str) and isinstance(index, int):
            return [ReasoningSummaryDelta(delta, index)]
        return []

    def _content_delta(self, obj: dict[str, Any]) -> list[Event]:
        delta, index = obj.get("delta"), obj.get("content_index")
        if isinstance(delta, str) and isinstance(index, int):
            return [ReasoningContentDelta(delta, index)]
        return []

    def _part_added(self, obj: dict[str, Any]) -> list[Event]:
        index = obj.get("summary_index")
        return [ReasoningSummaryPartAdded(index)] if isinstance(index, int) else []

    def _complete(self, obj: dict[str, Any]) -> list[Event]:
        try:
            event = _completed(obj.get("response"))
        except StreamError as exc:
            self._error = exc
            return []
        self.done = True
        return [event]

    def _failed(self, obj: dict[str, Any]) -> list[Event]:
        response = obj.get("response")
        self._error = failure_error(response)
        return []

    def _incomplete(self, obj: dict[str, Any]) -> list[Event]:
        response = obj.get("response")
        details = response.get("incomplete_details") if isinstance(response, dict) else None
        reason = details.get("reason") if isinstance(details, dict) else None
        self._error = StreamError(f"Incomplete response returned, reason: {reason or 'unknown'}",
                                  retryable=False)
        return []


def _describe_bad_event(data: str) -> str:
    preview = data if len(data) <= 80 else data[:77] + "..."
    try:
        loads(data)
    except Exception:
        return f"an event's data was not valid JSON: {preview!r}"
    return f"an event had no `type` field: {preview!r}"


_HANDLERS = {
    "response.created": ResponsesDecoder._created,
    "response.output_item.added": ResponsesDecoder._item_added,
    "response.output_item.done": ResponsesDecoder._item_done,
    "response.reasoning_summary_text.delta": ResponsesDecoder._summary_delta,
    "response.reasoning_text.delta": ResponsesDecoder._content_delta,
    "response.reasoning_summary_part.added": ResponsesDecoder._part_added,
    "response.completed": ResponsesDecoder._complete,
    "response.failed": ResponsesDecoder._failed,
    "response.incomplete": ResponsesDecoder._incomplete,
}
