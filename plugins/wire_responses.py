"""The Responses wire: ``POST responses`` bodies and the Responses SSE decoder, registered as
the Wire ``"responses"`` (``WireApi.RESPONSES``).

Follows codex-rs/codex-api ``requests/responses.rs`` (body) and ``sse/responses.rs`` (events),
in its newer form where ``Completed`` is delivered as soon as ``response.completed`` arrives.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

from codexapi import (
    Completed,
    Created,
    Event,
    InvalidRequest,
    ModelVerifications,
    OutputItemAdded,
    OutputItemDone,
    Provider,
    RateLimits,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryDone,
    ReasoningSummaryPartAdded,
    ResponsesRequest,
    SafetyBuffering,
    ServerModel,
    SseMessage,
    StreamDropped,
    StreamError,
    TokenUsage,
    ToolCallInputDelta,
    TurnModerationMetadata,
    UndecodableEvent,
    UnsupportedEndpointError,
    WireApi,
    hookimpl,
)
from codexapi.plugin_api import (  # noqa: F401
    SAFETY_FASTER_MODEL_HEADER,
    DecoderSettings,
    SseStreamDecoder,
    incomplete_failure,
    item_from_json,
    item_to_json,
    loads,
    new_output_text_delta,
    new_output_text_deltas,
    options_to_json,
    parse_rate_limit_event,
    parse_retry_after,
    preview,
    stream_failure,
)

log = logging.getLogger("codexapi")

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
            return compact_body(request)
        raise UnsupportedEndpointError(f"the responses wire sends no body to {endpoint!r}")

    def decoder(self, endpoint: str, settings: DecoderSettings | None = None
                ) -> SseStreamDecoder:
        if endpoint != "stream":
            raise UnsupportedEndpointError(f"the responses wire streams only 'stream', not "
                                           f"{endpoint!r}")
        settings = settings if settings is not None else DecoderSettings()
        return SseStreamDecoder(message_decoder(settings), settings.max_message_bytes)

    def resume(self, endpoint: str, body: Mapping[str, Any], position: tuple[str, int]
               ) -> tuple[str, str, str] | None:
        """A dropped background response is read again from where it stopped: ``GET
        responses/{id}?stream=true&starting_after=N`` (the Responses API's resumable
        streams). Other turns cannot be resumed."""
        if endpoint != "stream" or body.get("background") is not True:
            return None
        response_id, after = position
        return ("GET", f"{PATHS['stream']}/{quote(response_id, safe='')}",
                f"stream=true&starting_after={after}")

    def __repr__(self) -> str:
        return f"ResponsesWire(provider={self.provider.name!r})"


WIRE = ResponsesWire()


def message_decoder(settings: DecoderSettings) -> ResponsesDecoder:
    """The Responses message decoder (SSE ``data`` payloads or WebSocket text frames) for a
    stream whose answer head and provider gave ``settings``."""
    return ResponsesDecoder(settings.headers.get(SAFETY_FASTER_MODEL_HEADER) or None,
                            settings.skip_undecodable)


@hookimpl
def codexapi_register_wires(register: Callable[[Any], None]) -> None:
    register(WIRE)


def _input_item(item: Any) -> dict[str, Any]:
    if isinstance(item, dict):
        return dict(item)  # the caller's JSON, sent as given (unknown types included)
    # Ids are kept on every item: the Codex CLI sends them whatever the provider.
    return item_to_json(item)


#: Optional request fields sent under their own name when set, in the order sent.
OPTIONAL_FIELDS = ("service_tier", "prompt_cache_key", "previous_response_id",
                   "max_output_tokens", "temperature", "top_p", "metadata", "background",
                   "truncation", "safety_identifier")


def build_body(provider: Provider, request: ResponsesRequest) -> dict[str, Any]:
    """The ``POST responses`` body, as the Codex CLI 0.171 sends it (key for key)."""
    azure = provider.is_azure_responses_endpoint()
    store = request.store if request.store is not None else azure
    body: dict[str, Any] = {"model": request.model}
    if request.instructions:
        body["instructions"] = request.instructions
    body["stream"] = True
    body["input"] = [_input_item(i) for i in request.input]
    if request.tools is not None:
        body["tools"] = [dict(t) for t in request.tools]
    body["tool_choice"] = request.tool_choice
    body["parallel_tool_calls"] = request.parallel_tool_calls
    body["reasoning"] = options_to_json(request.reasoning)
    body["store"] = store
    body["include"] = list(request.include)
    for name in OPTIONAL_FIELDS:
        value = getattr(request, name)
        if value is not None:
            body[name] = value
    if request.text is not None:
        body["text"] = options_to_json(request.text)
    if request.client_metadata is not None:
        body["client_metadata"] = dict(request.client_metadata)
    if request.extra_body:
        body.update(request.extra_body)
    return body


def compact_body(request: ResponsesRequest) -> dict[str, Any]:
    """The ``POST responses/compact`` body, as the crate's ``CompactionInput`` serializes."""
    body: dict[str, Any] = {"model": request.model,
                            "input": [_input_item(i) for i in request.input]}
    if request.instructions:
        body["instructions"] = request.instructions
    body["tools"] = [dict(t) for t in request.tools or ()]
    body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.reasoning is not None:
        body["reasoning"] = options_to_json(request.reasoning)
    if request.service_tier is not None:
        body["service_tier"] = request.service_tier
    if request.prompt_cache_key is not None:
        body["prompt_cache_key"] = request.prompt_cache_key
    if request.text is not None:
        body["text"] = options_to_json(request.text)
    if request.extra_body:
        body.update(request.extra_body)
    return body


# --- decoding -------------------------------------------------------------------------------

#: Kept importable from here; the mapping itself lives in core (codexapi.error_mapping).
failure_error = stream_failure


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
        end_turn = response.get("end_turn")
        return Completed(rid, token_usage(response.get("usage")),
                         end_turn if isinstance(end_turn, bool) else None)
    except KeyError as exc:
        raise StreamError(f"failed to parse ResponseCompleted: missing field `{exc.args[0]}`",
                          retryable=False) from None
    except (TypeError, ValueError, AttributeError) as exc:
        raise StreamError(f"failed to parse ResponseCompleted: {exc}", retryable=False) from None


class ResponsesDecoder:
    """Responses events (JSON objects) -> codexapi events. The same decoder serves every
    framing: SSE ``data`` payloads on HTTP, text frames on the WebSocket wire.

    A terminal ``response.failed`` / ``response.incomplete`` ends the turn at once (``done``
    becomes true and :meth:`close` raises its error), whether or not the server then closes
    the connection. ``faster_model`` is the ``x-codex-safety-buffering-faster-model`` hint that
    :class:`SafetyBuffering` events fall back to.
    """

    __slots__ = ("_error", "_last_model", "_skipped", "done", "faster_model", "other_events",
                 "response_id", "sequence_number", "skip_undecodable", "skipped", "turn_state")

    def __init__(self, faster_model: str | None = None,
                 skip_undecodable: bool = False) -> None:
        self.done = False
        self.faster_model = faster_model
        #: ``x-codex-turn-state`` from a ``response.metadata`` event, when one carried it.
        self.turn_state: str | None = None
        self._error: Exception | None = None
        self._skipped: str | None = None
        #: Skip undecodable events (the crate's behaviour) instead of raising UndecodableEvent.
        self.skip_undecodable = skip_undecodable
        #: How many were skipped.
        self.skipped = 0
        #: The ``sequence_number`` of the last event decoded and the response's id, as a
        #: dropped background stream's resume needs them.
        self.sequence_number: int | None = None
        self.response_id: str | None = None
        self._last_model: str | None = None
        #: Grows with every event not taken by the plain-delta fast path (the StreamDecoder
        #: protocol's ``other_events``): counted once per payload, not per event returned.
        self.other_events = 0

    @property
    def position(self) -> tuple[str, int] | None:
        """``(response_id, sequence_number)`` of the last event decoded, once both are known:
        where a dropped background stream resumes."""
        if self.response_id is None or self.sequence_number is None:
            return None
        return self.response_id, self.sequence_number

    def feed(self, message: SseMessage) -> list[Event]:
        return self.feed_data((message.data,))

    def feed_data(self, datas: Iterable[str | bytes]) -> list[Event]:
        """The events of several payloads (JSON text or UTF-8 bytes), in order; stops after
        the payload that ends the turn, as the stream does."""
        # The commonest event by far, a plain text delta, is handled inline: its text is put
        # in ``out`` as it is and a run of them becomes events at once (in C) when something
        # else comes, or at the end. ``out[start:]`` is the run still held as strings.
        out: list[Any] = []
        append = out.append
        start = 0
        last = None
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
            last = obj
            if kind == "response.output_text.delta" and "safety_buffering" not in obj:
                delta = obj.get("delta")
                if delta.__class__ is str:
                    append(delta)
                continue
            self.other_events += 1
            if obj.__class__ is not dict:
                continue
            if len(out) > start:
                out[start:] = new_output_text_deltas(out[start:])
            self._side_events(obj, out)
            handler = _HANDLERS.get(kind) if kind.__class__ is str else None
            if handler is not None:
                events = handler(self, obj)
                if events:
                    out.extend(events)
            start = len(out)
            if self.done:
                break
        if last is not None and last.__class__ is dict:
            seq = last.get("sequence_number")
            if seq.__class__ is int:
                self.sequence_number = seq
        held = len(out) - start
        if held:
            if held == 1:  # one event per read: a model writing slower than the client reads
                out[start] = new_output_text_delta(out[start])
            elif start == 0:
                return new_output_text_deltas(out)
            else:
                out[start:] = new_output_text_deltas(out[start:])
        return out

    def _side_events(self, obj: dict[str, Any], out: list[Event]) -> None:
        # What any event may carry besides its own meaning: the model that served it (in
        # ``response.headers`` or, on WebSocket metadata, top-level ``headers``) and a
        # safety-buffering notice. Both come before the event itself, as in the crate.
        response = obj.get("response")
        model = None
        if response.__class__ is dict and "headers" in response:
            model = _header_value(response["headers"], _MODEL_HEADERS)
        if model is None and "headers" in obj:
            model = _header_value(obj["headers"], _MODEL_HEADERS)
        if model is not None and model != self._last_model:
            self._last_model = model
            out.append(ServerModel(model))
        if obj.get("type") == "response.metadata":
            metadata = obj.get("metadata")
            if isinstance(metadata, dict):
                verifications = _verifications(metadata.get("openai_verification_recommendation"))
                if verifications:
                    out.append(ModelVerifications(verifications))
                if "openai_chatgpt_moderation_metadata" in metadata:
                    out.append(TurnModerationMetadata(
                        metadata["openai_chatgpt_moderation_metadata"]))
        buffering = self._safety_buffering(obj)
        if buffering is not None:
            out.append(buffering)

    def _safety_buffering(self, obj: dict[str, Any]) -> SafetyBuffering | None:
        value = obj.get("safety_buffering") if "safety_buffering" in obj else None
        if "safety_buffering" not in obj and obj.get("type") == "response.metadata":
            metadata = obj.get("metadata")
            if isinstance(metadata, dict) and metadata.get("type") == "safety_buffering":
                value = metadata
        if not isinstance(value, dict):
            return None
        use_cases, reasons = value.get("use_cases"), value.get("reasons")
        if not (_str_list(use_cases) and _str_list(reasons)):
            return None
        if "retry_model" in value:
            retry = value["retry_model"]
            faster = retry if isinstance(retry, str) else None
        else:
            faster = self.faster_model
        return SafetyBuffering(use_cases, reasons, faster)

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
        if data.strip() == "[DONE]":
            return None  # a Chat-style terminator some gateways append: not an event
        return self._bad_event(data)

    def _bad_event(self, data: str) -> None:
        description = _describe_bad_event(data)
        kind = guess_event_type(data)
        if not self.skip_undecodable:
            # A skipped delta is text silently missing from the turn: say so instead.
            raise UndecodableEvent(f"{description}; set Provider.skip_undecodable_events=True "
                                   "to skip such events as the Codex CLI does", event_type=kind)
        # The crate skips undecodable events; count them, and remember the first so a stream
        # that then fails to complete says why. The log names the event, never its data.
        self.skipped += 1
        log.warning("skipped an undecodable event%s (%d characters)",
                    f" of type {kind!r}" if kind else "", len(data))
        if self._skipped is None:
            self._skipped = description

    def close(self) -> list[Event]:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        if self.done:
            return []
        message = "stream closed before response.completed"
        if self._skipped:
            message += f" ({self._skipped})"
        raise StreamDropped(message)

    # Each handler takes the decoded event object and returns the events it produces.
    def _created(self, obj: dict[str, Any]) -> list[Event]:
        self._queued(obj)
        response = obj.get("response")
        if "response" not in obj:
            return []
        rid = response.get("id") if isinstance(response, dict) else None
        return [Created(rid if isinstance(rid, str) else None)]

    def _text_delta(self, obj: dict[str, Any]) -> list[Event]:
        # The inline fast path handles plain deltas; this one those carrying a side notice.
        delta = obj.get("delta")
        return [new_output_text_delta(delta)] if delta.__class__ is str else []

    def _queued(self, obj: dict[str, Any]) -> list[Event]:
        response = obj.get("response")
        if self.response_id is None and isinstance(response, dict):
            rid = response.get("id")
            if isinstance(rid, str) and rid:
                self.response_id = rid
        return []

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

    def _tool_input_delta(self, obj: dict[str, Any]) -> list[Event]:
        delta, call_id = obj.get("delta"), obj.get("call_id")
        call_id = call_id if isinstance(call_id, str) else None
        item_id = obj.get("item_id")
        item_id = item_id if isinstance(item_id, str) else call_id
        if isinstance(delta, str) and item_id is not None:
            return [ToolCallInputDelta(item_id, call_id, delta)]
        return []

    def _summary_delta(self, obj: dict[str, Any]) -> list[Event]:
        delta, index = obj.get("delta"), obj.get("summary_index")
        if isinstance(delta, str) and isinstance(index, int):
            return [ReasoningSummaryDelta(delta, index)]
        return []

    def _summary_done(self, obj: dict[str, Any]) -> list[Event]:
        item_id, text, index = obj.get("item_id"), obj.get("text"), obj.get("summary_index")
        if isinstance(item_id, str) and isinstance(text, str) and isinstance(index, int):
            return [ReasoningSummaryDone(item_id, text, index)]
        return []

    def _content_delta(self, obj: dict[str, Any]) -> list[Event]:
        delta, index = obj.get("delta"), obj.get("content_index")
        if isinstance(delta, str) and isinstance(index, int):
            return [ReasoningContentDelta(delta, index)]
        return []

    def _part_added(self, obj: dict[str, Any]) -> list[Event]:
        index = obj.get("summary_index")
        return [ReasoningSummaryPartAdded(index)] if isinstance(index, int) else []

    def _metadata(self, obj: dict[str, Any]) -> list[Event]:
        state = _header_value(obj.get("headers"), ("x-codex-turn-state",))
        if state is not None:
            self.turn_state = state
        return []

    def _rate_limits(self, obj: dict[str, Any]) -> list[Event]:
        snapshot = parse_rate_limit_event(obj)
        return [RateLimits(snapshot)] if snapshot is not None else []

    def _complete(self, obj: dict[str, Any]) -> list[Event]:
        try:
            event = _completed(obj.get("response"))
        except StreamError as exc:
            self._error = exc
            return []
        self._error = None
        self.done = True
        return [event]

    def _failed(self, obj: dict[str, Any]) -> list[Event]:
        # Terminal: nothing after it can complete the turn, so the stream ends here rather
        # than waiting for a close the server may never send.
        self._error = stream_failure(obj.get("response"))
        self.done = True
        return []

    def _incomplete(self, obj: dict[str, Any]) -> list[Event]:
        self._error = incomplete_failure(obj.get("response"))
        self.done = True
        return []


_TYPE_FIELD = re.compile(r'"type"\s*:\s*"([A-Za-z0-9_.\-]{1,100})"')


def guess_event_type(data: str) -> str | None:
    """The ``"type"`` an undecodable event's data names, if it names one."""
    match = _TYPE_FIELD.search(data[:4096])
    return match.group(1) if match else None


_MODEL_HEADERS = ("openai-model", "x-openai-model")


def _header_value(headers: Any, names: tuple[str, ...]) -> str | None:
    """A header from a JSON ``headers`` object (any name case; a list means its first)."""
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() in names:
            if isinstance(value, list):
                value = value[0] if value else None
            if isinstance(value, str):
                return value
    return None


def _str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


#: Verification names this library knows (the crate's ``ModelVerification`` variants).
KNOWN_VERIFICATIONS = ("trusted_access_for_cyber",)


def _verifications(value: Any) -> list[str]:
    out: list[str] = []
    if isinstance(value, list):
        for v in value:
            if v in KNOWN_VERIFICATIONS and v not in out:
                out.append(v)
    return out


def _describe_bad_event(data: str) -> str:
    shown = preview(data, 80, ellipsis="...")
    kind = guess_event_type(data)
    name = f"a {kind!r} event's data" if kind else "an event's data"
    try:
        loads(data)
    except Exception as exc:
        return f"{name} was not valid JSON: {shown!r} ({exc})"
    return f"an event had no `type` field: {shown!r}"


_HANDLERS = {
    "response.queued": ResponsesDecoder._queued,
    "response.in_progress": ResponsesDecoder._queued,
    "response.created": ResponsesDecoder._created,
    "response.output_text.delta": ResponsesDecoder._text_delta,
    "response.output_item.added": ResponsesDecoder._item_added,
    "response.output_item.done": ResponsesDecoder._item_done,
    "response.custom_tool_call_input.delta": ResponsesDecoder._tool_input_delta,
    "response.function_call_arguments.delta": ResponsesDecoder._tool_input_delta,
    "response.reasoning_summary_text.delta": ResponsesDecoder._summary_delta,
    "response.reasoning_summary_text.done": ResponsesDecoder._summary_done,
    "response.reasoning_text.delta": ResponsesDecoder._content_delta,
    "response.reasoning_summary_part.added": ResponsesDecoder._part_added,
    "response.metadata": ResponsesDecoder._metadata,
    "codex.response.metadata": ResponsesDecoder._metadata,
    "codex.rate_limits": ResponsesDecoder._rate_limits,
    "response.completed": ResponsesDecoder._complete,
    "response.failed": ResponsesDecoder._failed,
    "response.incomplete": ResponsesDecoder._incomplete,
}
