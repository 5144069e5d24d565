"""The Chat Completions wire: ``POST chat/completions`` bodies and the Chat SSE decoder.

Follows codex-rs/codex-api ``requests/chat.rs`` (ChatRequestBuilder) for the body and
``sse/chat.rs`` (``process_chat_sse``, in its later index-based form) for the events, so the
same :class:`~codexapi.ResponsesRequest` and the same events work on either wire.

Where this module goes beyond the crate, on purpose:

- Tools given in Responses format (``{"type": "function", "name": ...}``) are wrapped into Chat
  format the way codex-core does before calling the builder; other Responses tool types
  (``web_search``, ``local_shell``...) have no Chat equivalent and are dropped, as there.
- The decoder also reads ``delta.reasoning_content`` (vLLM, DeepSeek, llama.cpp...), the chunk
  ``id`` as the response id and a ``usage`` object (``stream_options.include_usage``), which the
  Chat-era crate read and the later one dropped.
- A body that ends without any ``finish_reason`` or ``[DONE]`` is a truncated stream and raises
  :class:`~codexapi.StreamError` (the crate reports such a stream as completed).
- A chunk carrying an ``error`` object, or a ``finish_reason: "error"`` (sent mid-stream by
  several gateways), raises a typed error instead of ending as a completed turn.

The body is the crate's exactly: no ``stream_options``. OpenAI only sends usage on a Chat
stream when asked; pass :class:`ChatIncludeUsage` as a plugin to ask for it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from typing import Any, cast

from codexapi import (
    Completed,
    ConfigError,
    ContextWindowExceeded,
    Event,
    InvalidRequest,
    OutputItemAdded,
    OutputItemDone,
    Provider,
    ReasoningContentDelta,
    ResponsesRequest,
    SseMessage,
    StreamDropped,
    StreamError,
    TokenUsage,
    UndecodableEvent,
    UnsupportedEndpointError,
    WireApi,
    hookimpl,
)
from codexapi.plugin_api import (
    DecoderSettings,
    SseStreamDecoder,
    format_of,
    item_from_json,
    item_to_json,
    loads,
    new_output_text_delta,
    new_output_text_deltas,
    preview,
)
from codexapi.plugin_api import stream_failure as failure_error

log = logging.getLogger("codexapi")

PATHS = {"stream": "chat/completions", "models": "models"}

#: The crate's exact wording (ApiError::Stream in endpoint/compact.rs of the Chat era).
COMPACT_ON_CHAT = "compact endpoint requires responses wire api"


class ChatWire:
    """Chat Completions over HTTP + SSE (no compact endpoint)."""

    name = WireApi.CHAT.value

    def path(self, endpoint: str) -> str:
        if endpoint == "compact":
            # Raised here, not at send time: Client.compact asks for the path before any
            # traffic.
            raise UnsupportedEndpointError(
                f"{COMPACT_ON_CHAT} (this provider uses the chat wire; compact needs a "
                "provider with wire='responses')")
        try:
            return PATHS[endpoint]
        except KeyError:
            raise UnsupportedEndpointError(f"the chat wire has no {endpoint!r} endpoint"
                                           ) from None

    def body(self, endpoint: str, request: Any) -> dict[str, Any]:
        if endpoint != "stream":
            self.path(endpoint)  # the endpoint's own error
            raise UnsupportedEndpointError(f"the chat wire sends no body to {endpoint!r}")
        if not isinstance(request, ResponsesRequest):
            raise InvalidRequest(f"the chat wire builds bodies from a ResponsesRequest, not "
                                 f"{type(request).__name__}")
        return build_body(request)

    def decoder(self, endpoint: str, settings: DecoderSettings | None = None
                ) -> SseStreamDecoder:
        if endpoint != "stream":
            raise UnsupportedEndpointError(f"the chat wire streams only 'stream', not "
                                           f"{endpoint!r}")
        settings = settings if settings is not None else DecoderSettings()
        return SseStreamDecoder(ChatDecoder(settings.skip_undecodable),
                                settings.max_message_bytes)

    def __repr__(self) -> str:
        return "ChatWire()"


WIRE = ChatWire()


@hookimpl
def codexapi_register_wires(register: Callable[[Any], None]) -> None:
    register(WIRE)


class ChatIncludeUsage:
    """A plugin object: Chat bodies also ask for a trailing usage chunk.

        Client(provider, plugins=[ChatIncludeUsage()])

    OpenAI (and most compatible servers) then send ``{"choices": [], "usage": {...}}`` before
    ``[DONE]``; it arrives as ``Completed.token_usage``. Off by default because the crate does
    not send ``stream_options`` and a few servers reject fields they do not know.
    """

    @hookimpl(wrapper=True)
    def codexapi_build_body(self, provider: Provider, endpoint: str
                            ) -> Generator[None, Any, Any]:
        body = yield
        if endpoint == "stream" and provider.wire == WireApi.CHAT and isinstance(body, dict):
            body["stream_options"] = {"include_usage": True}
        return body


# --- request body ---------------------------------------------------------------------------


#: ResponsesRequest fields Chat Completions has too, and their Chat names.
CHAT_FIELDS = {"max_output_tokens": "max_completion_tokens", "temperature": "temperature",
               "top_p": "top_p", "service_tier": "service_tier", "metadata": "metadata",
               "safety_identifier": "safety_identifier"}
#: ResponsesRequest fields Chat Completions has no equivalent for.
NOT_ON_CHAT = ("previous_response_id", "background", "truncation")


def build_body(request: ResponsesRequest) -> dict[str, Any]:
    """The ``POST chat/completions`` body: model, messages, ``stream: true``, tools, then the
    optional fields Chat has (``max_output_tokens`` as ``max_completion_tokens``...) and
    ``extra_body``. ``client_metadata`` is Codex's and is not sent on Chat."""
    for name in NOT_ON_CHAT:
        if getattr(request, name) is not None:
            raise ConfigError(
                f"{name} is a Responses API feature that Chat Completions does not have; "
                "use a provider with wire='responses', or leave it unset")
    body: dict[str, Any] = {
        "model": request.model,
        "messages": build_messages(request.instructions, request.input),
        "stream": True,
        "tools": chat_tools(request.tools or ()),
    }
    for name, chat_name in CHAT_FIELDS.items():
        value = getattr(request, name)
        if value is not None:
            body[chat_name] = value
    response_format = chat_response_format(request.text)
    if response_format is not None:
        body["response_format"] = response_format
    if request.extra_body:
        body.update(request.extra_body)
    return body


def chat_response_format(text: Any) -> dict[str, Any] | None:
    """``text.format`` as Chat's ``response_format``: the Responses form is flat
    (``{"type": "json_schema", "name", "schema", "strict"}``), Chat's nests the schema under
    ``json_schema``. Without it the format was dropped, and the model answered free text."""
    fmt = format_of(text)
    if not isinstance(fmt, Mapping) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") != "json_schema":
        return dict(fmt)  # {"type": "json_object"} is the same on both
    spec = {k: v for k, v in fmt.items() if k != "type"}
    spec.setdefault("name", "output")
    return {"type": "json_schema", "json_schema": spec}


def chat_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Tools in Chat format: Responses function tools are wrapped, Chat ones pass through."""
    out: list[dict[str, Any]] = []
    for tool in tools:
        if isinstance(tool.get("function"), Mapping):
            out.append(dict(tool))
        elif tool.get("type") == "function":
            spec = {k: v for k, v in tool.items() if k != "type"}
            out.append({"type": "function", "function": spec})
        # codex-core drops the rest: the Chat API has no hosted tools.
    return out


_TEXT_PARTS = ("input_text", "output_text", "text")
_CALL_TYPES = ("function_call", "local_shell_call")


def _normalize(items: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for index, item in enumerate(items):
        try:
            data = item_to_json(item)
        except TypeError as exc:
            raise InvalidRequest(f"input item {index}: {exc}") from None
        if "type" not in data and "role" in data:
            data["type"] = "message"  # Responses' "easy input message" form
        out.append(data)
    return out


def _role(item: Mapping[str, Any]) -> str | None:
    """The Chat role this item would be sent as, if it changes the last emitted role."""
    kind = item.get("type")
    if kind == "message":
        role = item.get("role")
        return role if isinstance(role, str) else None
    if kind in _CALL_TYPES:
        return "assistant"
    if kind == "function_call_output":
        return "tool"
    return None


def _is_assistant_message(item: Mapping[str, Any] | None) -> bool:
    return item is not None and item.get("type") == "message" and item.get("role") == "assistant"


def _reasoning_text(item: Mapping[str, Any]) -> str:
    content = item.get("content")
    if not isinstance(content, list):
        return ""
    return "".join(
        part["text"] for part in content
        if isinstance(part, Mapping) and isinstance(part.get("text"), str)
    )


def _anchor_reasoning(items: list[dict[str, Any]]) -> dict[int, str]:
    """Reasoning text per item index, attached as the crate does (requests/chat.rs)."""
    last_role = None
    last_user = -1
    for index, item in enumerate(items):
        role = _role(item)
        if role is not None:
            last_role = role
        if item.get("type") == "message" and item.get("role") == "user":
            last_user = index
    anchors: dict[int, str] = {}
    # A turn that ends with the user speaking starts fresh: old reasoning is not replayed.
    if last_role == "user":
        return anchors
    for index in range(last_user + 1, len(items)):
        item = items[index]
        if item.get("type") != "reasoning" or not isinstance(item.get("content"), list):
            continue
        text = _reasoning_text(item)
        if not text.strip():
            continue
        prev = items[index - 1] if index > 0 else None
        nxt = items[index + 1] if index + 1 < len(items) else None
        if _is_assistant_message(prev):
            target = index - 1
        elif nxt is not None and (nxt.get("type") in _CALL_TYPES or _is_assistant_message(nxt)):
            target = index + 1
        else:
            continue
        anchors[target] = anchors.get(target, "") + text
    return anchors


def _message_content(content: Any) -> tuple[str, list[dict[str, Any]], bool]:
    """(concatenated text, Chat parts, whether an image was seen)."""
    if isinstance(content, str):
        return content, [{"type": "text", "text": content}], False
    text: list[str] = []
    parts: list[dict[str, Any]] = []
    image = False
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, Mapping):
            continue
        kind = part.get("type")
        if kind in _TEXT_PARTS and isinstance(part.get("text"), str):
            text.append(part["text"])
            parts.append({"type": "text", "text": part["text"]})
        elif kind == "input_image":
            url = part.get("image_url")
            if isinstance(url, Mapping):  # tolerate the Chat shape {"url": ...}
                url = url.get("url")
            if isinstance(url, str):
                image = True
                parts.append({"type": "image_url", "image_url": {"url": url}})
    return "".join(text), parts, image


def _tool_output(output: Any) -> Any:
    if isinstance(output, Mapping):
        # codex-protocol's payload form: {"content": str, "content_items": [...]}
        items = output.get("content_items")
        output = items if isinstance(items, list) else output.get("content", "")
    if isinstance(output, list):
        _, parts, _ = _message_content(output)
        return parts
    return output if isinstance(output, str) else str(output)


def _required(item: Mapping[str, Any], index: int, *names: str) -> list[str]:
    values = []
    for name in names:
        value = item.get(name)
        if not isinstance(value, str):
            raise InvalidRequest(f"input item {index} ({item.get('type')}) needs a string "
                                 f"`{name}`, got {type(value).__name__}")
        values.append(value)
    return values


def build_messages(instructions: str, input_items: Sequence[Any]) -> list[dict[str, Any]]:
    """Responses input items -> Chat ``messages``, following ChatRequestBuilder."""
    items = _normalize(input_items)
    anchors = _anchor_reasoning(items)
    messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}]
    last_assistant_text: str | None = None
    for index, item in enumerate(items):
        kind = item.get("type")
        msg: dict[str, Any]
        if kind == "message":
            role = item.get("role")
            if not isinstance(role, str):
                raise InvalidRequest(f"input item {index} (message) needs a string `role`")
            text, parts, image = _message_content(item.get("content"))
            if role == "assistant":
                # The crate drops an assistant message repeating the last one's text.
                if text == last_assistant_text:
                    continue
                last_assistant_text = text
                msg = {"role": role, "content": text}
            else:
                msg = {"role": role, "content": parts if image else text}
            if index in anchors and role == "assistant":
                msg["reasoning"] = anchors[index]
        elif kind == "function_call":
            name, arguments, call_id = _required(item, index, "name", "arguments", "call_id")
            msg = _tool_call_message(anchors.get(index), {
                "id": call_id, "type": "function",
                "function": {"name": name, "arguments": arguments}})
        elif kind == "local_shell_call":
            ident = item.get("id") or item.get("call_id") or ""
            msg = _tool_call_message(anchors.get(index), {
                "id": ident, "type": "local_shell_call", "status": item.get("status"),
                "action": item.get("action")})
        elif kind == "custom_tool_call":
            name, call_input = _required(item, index, "name", "input")
            msg = _tool_call_message(None, {
                "id": item.get("id") or item.get("call_id") or "", "type": "custom",
                "custom": {"name": name, "input": call_input}})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            (call_id,) = _required(item, index, "call_id")
            msg = {"role": "tool", "tool_call_id": call_id,
                   "content": _tool_output(item.get("output"))}
        else:
            continue  # reasoning (anchored above), web_search_call, compaction, unknown
        messages.append(msg)
    return messages


def _tool_call_message(reasoning: str | None, call: dict[str, Any]) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": None}
    if reasoning is not None:
        msg["reasoning"] = reasoning
    msg["tool_calls"] = [call]
    return msg


# --- decoding -------------------------------------------------------------------------------


class _ToolCall:
    __slots__ = ("arguments", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.arguments = ""


def _plain_texts(datas: list[str | bytes]) -> list[str]:
    """The texts of the leading chunks of ``datas`` that are plain text deltas, exactly those
    :meth:`ChatDecoder.feed` takes on its inline path (one choice, a delta of ``content`` alone
    or with ``role``, non-empty text, no ``finish_reason``, ``message``, ``usage`` or
    ``error``); empty when a chunk is not JSON, lacks a key looked up or has other than one
    choice (a final ``[DONE]`` is left out of the try). Keys are tested with ``in`` and ``[]``
    rather than ``get`` where a plain chunk always has them or never does: a method call per
    chunk costs more."""
    if datas[-1] == b"[DONE]":
        datas = datas[:-1]
    try:
        # ``for [choice] in (chunk["choices"],)`` unpacks the one choice in C: a list of
        # another length raises, and so does a choice or delta that is not an object (no
        # ``get``, no ``["content"]``): the general path then reads the whole read.
        texts = [
            text
            if ("usage" not in chunk and "error" not in chunk
                and choice.get("finish_reason") is None and "message" not in choice
                and (len(delta := choice["delta"]) == 1
                     or (len(delta) == 2 and "role" in delta))
                and (text := delta["content"]).__class__ is str and text)
            else None
            for chunk in map(loads, datas) for [choice] in (chunk["choices"],)]
    except Exception:  # not JSON, not an object, no choices: the general path says what
        return []
    return texts[:texts.index(None)] if None in texts else texts


def _reasoning_of(value: Any) -> str | None:
    """``reasoning`` may be a string, ``{"text": ...}`` or ``{"content": ...}``."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        for key in ("text", "content"):
            text = value.get(key)
            if isinstance(text, str):
                return text
    return None


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def chat_usage(usage: Mapping[str, Any]) -> TokenUsage:
    """Chat ``usage`` in the crate's names (missing counts are 0)."""
    prompt = _int(usage.get("prompt_tokens"))
    completion = _int(usage.get("completion_tokens"))
    in_details = usage.get("prompt_tokens_details")
    out_details = usage.get("completion_tokens_details")
    total = usage.get("total_tokens")
    return TokenUsage(
        input_tokens=prompt,
        cached_input_tokens=_int(in_details.get("cached_tokens"))
        if isinstance(in_details, dict) else 0,
        output_tokens=completion,
        reasoning_output_tokens=_int(out_details.get("reasoning_tokens"))
        if isinstance(out_details, dict) else 0,
        total_tokens=_int(total) if isinstance(total, int) else prompt + completion,
    )


class ChatDecoder:
    """Chat completion chunks -> the events the Responses wire produces.

    Text and reasoning deltas stream as they come; tool-call fragments are merged by
    ``index`` (or ``id``) and emitted whole on ``finish_reason: tool_calls``; the reasoning
    and message items are flushed on ``stop``; ``Completed`` comes at ``[DONE]`` or the end
    of the body, so a trailing usage chunk is included.
    """

    __slots__ = ("_assistant", "_by_id", "_calls", "_chunks", "_finished", "_last_call",
                 "_next_call", "_order", "_pending", "_reasoning", "_refusal", "_response_id",
                 "_skipped", "_usage", "done", "other_events", "skip_undecodable", "skipped")

    def __init__(self, skip_undecodable: bool = False) -> None:
        self.done = False
        #: Skip chunks that are not JSON (the crate's behaviour) instead of raising
        #: UndecodableEvent; ``skipped`` counts them.
        self.skip_undecodable = skip_undecodable
        self.skipped = 0
        #: The message's text deltas and refusal deltas, joined into one part each when the
        #: message is done.
        self._assistant: list[str] | None = None
        self._refusal: list[str] = []
        self._reasoning: list[dict[str, Any]] | None = None
        self._calls: dict[int, _ToolCall] = {}
        self._order: list[int] = []
        self._by_id: dict[str, int] = {}
        self._next_call = 0
        self._last_call: int | None = None
        self._response_id: str | None = None
        self._usage: TokenUsage | None = None
        self._chunks = 0
        self._finished = False
        self._skipped: str | None = None
        self._pending: Exception | None = None
        #: Grows each time a chunk leaves the plain text-delta path (the StreamDecoder
        #: protocol's ``other_events``).
        self.other_events = 0

    def feed(self, message: SseMessage) -> list[Event]:
        return self._feed(message.data)

    def feed_data(self, datas: Iterable[str | bytes]) -> list[Event]:
        """The events of several chunks' data (JSON text or UTF-8 bytes), in order: what
        :meth:`feed` gives one message at a time. An error after some events delivers them
        first and is raised by the next call; the turn's end stops the read.

        A read of plain text deltas of the message (the bulk of a stream) is decoded in one
        comprehension and its events built at once; the first chunk that is anything else
        and all after it go one at a time."""
        if self.done:
            return []
        datas = datas if datas.__class__ is list else list(datas)
        out: list[Event] = []
        rest: list[str | bytes] = datas
        if (len(datas) > 1 and self._assistant is not None and self._response_id is not None
                and self._pending is None):
            texts = _plain_texts(datas)
            if texts:
                self._chunks += len(texts)
                self._assistant += texts
                out = new_output_text_deltas(texts)
                rest = datas[len(texts):]
        for data in rest:
            try:
                events = self._feed(data)
            except Exception as exc:
                if not out:
                    raise
                # The events before it are delivered first, as separate reads would have.
                self._pending = exc
                break
            if events:
                out += events
            if self.done:
                break
        return out

    def _feed(self, data: str | bytes) -> list[Event]:
        if self.done:
            return []
        if self._pending is not None:
            raise self._pending
        try:
            chunk = loads(data)
        except ValueError:
            if data.__class__ is bytes:
                # Not valid UTF-8, perhaps: read as the text path would have decoded it (U+FFFD
                # for each bad sequence).
                data = cast(bytes, data).decode("utf-8", "replace")
                try:
                    chunk = loads(data)
                except ValueError:
                    self.other_events += 1
                    return self._not_json(cast(str, data))
            else:
                self.other_events += 1
                return self._not_json(cast(str, data))
        if chunk.__class__ is not dict:
            return []
        self._chunks += 1
        if self._response_id is None:
            rid = chunk.get("id")
            if isinstance(rid, str) and rid:
                self._response_id = rid
        if "usage" in chunk:
            usage = chunk["usage"]
            if isinstance(usage, dict):
                self._usage = chat_usage(usage)
        if chunk.get("error") is not None:
            # OpenRouter-style gateways report a failure mid-stream this way (sometimes with a
            # `finish_reason: "error"` choice); treating it as a finished turn would hide it.
            raise self._error(chunk["error"])
        choices = chunk.get("choices")
        if choices.__class__ is not list:
            return []
        out: list[Event] = []
        for choice in choices:
            if choice.__class__ is not dict:
                continue
            delta = choice.get("delta")
            # The common chunk is a bare text delta: handle it inline (hot path).
            if (delta.__class__ is dict and len(delta) <= 2 and "content" in delta
                    and (len(delta) == 1 or "role" in delta)
                    and delta["content"].__class__ is str
                    and choice.get("finish_reason") is None and "message" not in choice):
                text = delta["content"]
                if text:
                    pieces = self._assistant
                    if pieces is None:
                        self._append_text(text, out)  # announces the message item first
                    else:
                        pieces.append(text)
                        out.append(new_output_text_delta(text))
                continue
            self.other_events += 1
            self._choice(choice, out)
        if self._pending is not None and not out:
            raise self._pending
        # Deltas that came in the same chunk as finish_reason "length" are delivered first;
        # the error is raised on the next call.
        return out

    def _not_json(self, data: str) -> list[Event]:
        data = data.strip()
        if data == "[DONE]" or data == "DONE":
            return self._complete()
        if not data:
            return []
        description = f"a chunk's data was not valid JSON: {preview(data, 80, ellipsis='...')!r}"
        if not self.skip_undecodable:
            raise UndecodableEvent(f"{description}; set Provider.skip_undecodable_events=True "
                                   "to skip such chunks as the Codex CLI does")
        # The crate skips undecodable chunks; count them and keep the first for a later error
        # message. The log never shows the data.
        self.skipped += 1
        log.warning("skipped a chat chunk that is not valid JSON (%d characters)", len(data))
        if self._skipped is None:
            self._skipped = description
        return []

    def close(self) -> list[Event]:
        if self.done:
            return []
        self.other_events += 1
        if self._pending is not None:
            raise self._pending
        if self._chunks == 0:
            detail = f" ({self._skipped})" if self._skipped else ""
            raise StreamDropped(f"stream closed before any chat completion chunk{detail}")
        if not self._finished:
            detail = f"; {self._skipped}" if self._skipped else ""
            raise StreamDropped("stream closed before a finish_reason or [DONE] (the response "
                              f"was cut short){detail}")
        return self._complete()

    # --- per choice ------------------------------------------------------------------------
    def _choice(self, choice: dict[str, Any], out: list[Event]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            # Order within one delta follows the crate: reasoning, content, tool calls.
            text = _reasoning_of(delta.get("reasoning"))
            if not text:
                # Servers moving from `reasoning_content` to `reasoning` send both for a while;
                # the same text must not count twice.
                text = _reasoning_of(delta.get("reasoning_content"))
            if text:
                self._append_reasoning(text, out)
            content = delta.get("content")
            if isinstance(content, str):
                if content:
                    self._append_text(content, out)
            elif isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and isinstance(part.get("text"), str):
                        self._append_text(part["text"], out)
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                self._append_refusal(refusal, out)
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for call in calls:
                    if isinstance(call, dict):
                        self._tool_call(call)
        message = choice.get("message")
        if isinstance(message, dict) and "reasoning" in message:
            text = _reasoning_of(message["reasoning"])
            if text:
                self._append_reasoning(text, out)
        reason = choice.get("finish_reason")
        if reason is None:
            return
        self._finished = True
        if reason == "stop":
            self._flush_items(out)
            self._drop_calls()
        elif reason == "tool_calls":
            self._flush_reasoning(out)
            self._flush_calls(out)
        elif reason == "length" and self._pending is None:
            self._pending = ContextWindowExceeded(finish_reason="length")
        elif reason == "error" and self._pending is None:
            self._pending = StreamError("the server ended the choice with finish_reason "
                                        "'error' (no error details were sent)")

    def _message_text(self, out: list[Event]) -> list[str]:
        """The assistant message's text deltas so far; the first call announces the message.
        The deltas become one ``output_text`` part when the message is done, as the Responses
        wire's message has (one part per delta split an answer into pieces in the items, a
        saved conversation and spans)."""
        pieces = self._assistant
        if pieces is None:
            pieces = self._assistant = []
            self._refusal = []
            self.other_events += 1
            out.append(OutputItemAdded(item_from_json(
                {"type": "message", "role": "assistant", "content": []})))
        return pieces

    def _append_refusal(self, text: str, out: list[Event]) -> None:
        # Chat streams a refusal beside content; in the message item it is a Responses
        # ``refusal`` part, so StreamResult.refusal reads it the same on both wires.
        self._message_text(out)
        self._refusal.append(text)

    def _append_text(self, text: str, out: list[Event]) -> None:
        self._message_text(out).append(text)
        out.append(new_output_text_delta(text))

    def _append_reasoning(self, text: str, out: list[Event]) -> None:
        parts = self._reasoning
        if parts is None:
            parts = self._reasoning = []
            out.append(OutputItemAdded(item_from_json(
                {"type": "reasoning", "summary": [], "content": []})))
        out.append(ReasoningContentDelta(text, len(parts)))
        parts.append({"type": "reasoning_text", "text": text})

    def _tool_call(self, call: dict[str, Any]) -> None:
        index = call.get("index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            index = None
        ident = call.get("id")
        if not isinstance(ident, str) or not ident:
            ident = None
        elif ident in self._by_id:
            index = self._by_id[ident]
        if index is None and ident is None:
            index = self._last_call
        if index is None:
            while self._next_call in self._calls:
                self._next_call += 1
            index = self._next_call
            self._next_call += 1
        state = self._calls.get(index)
        if state is None:
            state = self._calls[index] = _ToolCall()
            self._order.append(index)
        if ident is not None:
            if state.id is None:
                state.id = ident
            self._by_id.setdefault(ident, index)
        function = call.get("function")
        if isinstance(function, dict):
            name = function.get("name")
            if isinstance(name, str) and name and state.name is None:
                state.name = name
            arguments = function.get("arguments")
            if isinstance(arguments, str):
                state.arguments += arguments
        self._last_call = index

    # --- flushing --------------------------------------------------------------------------
    def _flush_reasoning(self, out: list[Event]) -> None:
        if self._reasoning is not None:
            out.append(OutputItemDone(item_from_json(
                {"type": "reasoning", "summary": [], "content": self._reasoning})))
            self._reasoning = None

    def _flush_items(self, out: list[Event]) -> None:
        self._flush_reasoning(out)
        if self._assistant is not None:
            content: list[dict[str, Any]] = []
            if self._assistant:
                content.append({"type": "output_text", "text": "".join(self._assistant)})
            if self._refusal:
                content.append({"type": "refusal", "refusal": "".join(self._refusal)})
            out.append(OutputItemDone(item_from_json(
                {"type": "message", "role": "assistant", "content": content})))
            self._assistant = None
            self._refusal = []

    def _flush_calls(self, out: list[Event]) -> None:
        for index in self._order:
            state = self._calls[index]
            if not state.name:
                continue  # a call without a name cannot be run; the crate skips it too
            out.append(OutputItemDone(item_from_json({
                "type": "function_call", "name": state.name, "arguments": state.arguments,
                "call_id": state.id or f"tool-call-{index}"})))
        self._drop_calls()

    def _drop_calls(self) -> None:
        self._calls.clear()
        self._order.clear()
        self._by_id.clear()
        self._last_call = None

    def _complete(self) -> list[Event]:
        out: list[Event] = []
        self._flush_items(out)
        out.append(Completed(self._response_id or "", self._usage))
        self.done = True
        return out

    def _error(self, error: Any) -> Exception:
        if isinstance(error, dict):
            exc = failure_error({"error": error})
            if isinstance(exc, StreamError) and not exc.message:
                exc.message = "the server sent an error chunk without a message"
            return exc
        return StreamError(f"the server sent an error chunk: {preview(str(error), 200)}")
