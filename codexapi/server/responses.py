"""The Responses routes: ``POST /v1/responses`` (streamed or not, in the foreground or the
background), ``GET /v1/responses/{id}`` (``?stream=true&starting_after=N`` to stream it),
``POST /v1/responses/{id}/cancel``. WebSocket turns (:mod:`.websocket`) are answered by
:func:`answer` too, so both transports share the scripted model, faults and ids.

Every reply carries ``X-Models-Etag`` (the model list's ETag) and ``x-codex-turn-state``: a
new token, or the one the request echoed (echoed ones are kept in
``EmbeddedHTTPServer.turn_states_echoed`` and logged with ``verbose``).

A request with ``previous_response_id`` builds on that response: the model sees its input
(earlier turns included) and output before the request's own input. The id is looked up among
the stored responses (those created without ``store: false``), and on a WebSocket also in the
connection's own last response, stored or not (as the API's WebSocket mode does); an unknown
one is a 400 ``previous_response_not_found`` (param ``previous_response_id``), and a chain
whose input passes :data:`~.background.MAX_CONTEXT` bytes a 400 ``context_length_exceeded``.

A request whose last input item is ``{"type": "compaction_trigger"}`` (Codex's remote
compaction v2) is answered with exactly one ``compaction`` output item; one with ``generate:
false`` (the CLI's WebSocket prewarm) with no output at all.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from . import responses_wire
from .app import Exchange, route
from .background import MAX_CONTEXT, Context, StoredResponse
from .catalog import MODELS_ETAG
from .compaction import encode_summary, encrypted_summary
from .model import ModelInputError, ScriptedModel, Turn
from .responses_wire import new_id, request_items
from .scripted import script_turn
from .transcript import text_of

TURN_STATE_HEADER = "x-codex-turn-state"


def validate(model: ScriptedModel, body: Mapping[str, Any]) -> None:
    """ModelInputError for a request no model could answer: malformed tools, reasoning
    ciphertext this server did not issue."""
    tools = body.get("tools") or []
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise ModelInputError("`tools` must be an array of tool objects", "tools")
    check_sealed(model, request_items(body))


def turn_of(model: ScriptedModel, body: Mapping[str, Any],
            items: list[dict[str, Any]] | None = None, scripted: Turn | None = None,
            usage: Mapping[str, int] | None = None) -> Turn:
    """What the model answers ``body`` with (``items``: its input, earlier turns included,
    when not just the body's own; ``scripted``: the turn a user's script gave, ``usage`` the
    counts it set); ModelInputError for bad input."""
    if items is None:
        items = request_items(body)
    validate(model, body)
    if body.get("generate") is False:
        # The Codex CLI's WebSocket prewarm: a response with no output, to warm the connection.
        return Turn(input_tokens=_tokens(items))
    if items and items[-1].get("type") == "compaction_trigger":
        history = items[:-1]
        content = (encode_summary(scripted.text) if scripted is not None and scripted.text
                   else encrypted_summary(history)[0])
        return Turn(compaction=content, input_tokens=_tokens(history), usage=usage)
    if scripted is not None:
        turn = scripted
    else:
        text = body.get("text")
        text_format = text.get("format") if isinstance(text, Mapping) else None
        # The API's default for parallel_tool_calls is true: only an explicit false holds
        # back.
        turn = model.reply(items, body.get("tools") or [],
                           reasoning=bool(body.get("reasoning")), text_format=text_format,
                           parallel=body.get("parallel_tool_calls") is not False)
    if usage is not None:
        turn = attrs.evolve(turn, usage=usage)
    return sealed(model, body, turn)


#: What a request's ``include`` names to get reasoning back as ciphertext.
ENCRYPTED_REASONING = "reasoning.encrypted_content"


def sealed(model: ScriptedModel, body: Mapping[str, Any], turn: Turn) -> Turn:
    """``turn`` with its reasoning sealed into ``encrypted_content`` when ``include`` asks."""
    include = body.get("include")
    if turn.reasoning and isinstance(include, list) and ENCRYPTED_REASONING in include:
        return attrs.evolve(turn, encrypted_reasoning=model.seal.seal(turn.reasoning))
    return turn


def check_sealed(model: ScriptedModel, items: list[dict[str, Any]]) -> None:
    """A 400 ``invalid_encrypted_content`` (as the real API answers) for a reasoning item in
    the request's own input whose ``encrypted_content`` this server did not issue."""
    for index, item in enumerate(items):
        token = item.get("encrypted_content") if item.get("type") == "reasoning" else None
        if token is None:
            continue
        if not isinstance(token, str) or model.seal.open(token) is None:
            rid = item.get("id") or f"input[{index}]"
            raise ModelInputError(
                f"The encrypted content for item {rid} could not be verified. Reason: "
                "Encrypted content could not be decrypted or parsed.",
                f"input[{index}].encrypted_content", "invalid_encrypted_content")


def _tokens(items: list[dict[str, Any]]) -> int:
    return sum(len(text_of(i.get("content")).split()) for i in items) + 1


def mark_reply(ex: Exchange) -> None:
    """The headers every Responses reply carries (``X-Models-Etag``, the turn state)."""
    echoed = ex.headers.get(TURN_STATE_HEADER)
    if echoed:
        ex.server.turn_states_echoed.append(echoed)
        if ex.server.verbose:
            print(f"codexapi serve: {TURN_STATE_HEADER} echoed: {echoed}", file=sys.stderr)
    ex.reply_headers.update({"X-Models-Etag": MODELS_ETAG,
                             TURN_STATE_HEADER: echoed or f"ts_{uuid.uuid4().hex}"})


def context_of(ex: Exchange, body: Mapping[str, Any]) -> Context:
    """The input ``body`` is answered with: the ``previous_response_id`` chain's, then its
    own; ModelInputError when the id is unknown or the chain too long."""
    own = request_items(body)
    previous = body.get("previous_response_id")
    if previous is None:
        return Context(own, ex.body_size)
    if not isinstance(previous, str) or not previous:
        raise ModelInputError("`previous_response_id` must be a response id (a non-empty "
                              "string)", "previous_response_id", "invalid_type")
    base = ex.recall(previous)
    if base is None:
        raise ModelInputError(f"Previous response with id '{previous}' not found.",
                              "previous_response_id", "previous_response_not_found")
    size = ex.body_size
    if base.size + size > MAX_CONTEXT:
        raise ModelInputError(
            f"the input of the previous_response_id chain ({base.size + size} bytes) is over "
            f"the model's {MAX_CONTEXT} byte context; start a new chain, or compact it",
            "input", "context_length_exceeded")
    return base.then(own, size)


def answer(ex: Exchange, body: dict[str, Any]) -> None:
    """Answer one Responses request body (already known to be an object with a model)."""
    model = ex.server.model
    try:
        context = context_of(ex, body)
        validate(model, body)
        scripted, usage = None, None
        if body.get("generate") is not False:  # a prewarm is no model call
            seen = [i for i in context.items if i.get("type") != "compaction_trigger"]
            answered, scripted, usage = script_turn(ex, seen, body["model"], _tokens(seen))
            if answered:
                return
        turn = turn_of(model, body, context.items, scripted, usage)
    except ModelInputError as exc:
        ex.send_error(400, str(exc), exc.code, param=exc.param)
        return
    background = bool(body.get("background"))
    if background and body.get("store") is False:
        ex.send_error(400, "background responses need `store` (it is false here)",
                      "invalid_request", param="store")
        return
    stream = bool(body.get("stream")) or ex.always_streams
    rid = new_id("resp")
    meta = responses_wire.echoed(body) if background else None
    events = responses_wire.events(turn, body["model"], rid, meta)
    store = ex.server.store
    if background:
        stored = store.generate(rid, events, ex.server.background_interval, context,
                                owner=ex.owner)
        if stream:
            follow(ex, stored, -1)
        else:
            ex.send_json(200, stored.snapshot())
        return
    produced = list(events)
    if body.get("store") is not False:
        store.keep(rid, produced, context, owner=ex.owner)
    ex.remember(rid, context, produced[-1]["response"]["output"])
    if stream:
        ex.send_events(produced)
    else:
        ex.send_json(200, produced[-1]["response"])


def follow(ex: Exchange, stored: StoredResponse, after: int) -> None:
    """Stream ``stored``'s events after sequence number ``after`` as they come."""
    ex.start_stream()
    for event, last in stored.follow(after, ex.server.faults.stopping):
        if not ex.send_event(event, last and event.get("type") == "response.completed"):
            break  # a fault ended the stream: it says how (a truncated one still ends cleanly)
    ex.end_stream()


@route("POST", "/responses")
def post_responses(ex: Exchange) -> None:
    mark_reply(ex)
    body = ex.model_request()
    if body is not None:
        answer(ex, body)


def _stored(ex: Exchange) -> StoredResponse | None:
    rid = ex.params["id"]
    stored = ex.stored(rid)
    if stored is None:
        ex.send_error(404, f"Response with id '{rid}' not found.", "not_found", param="id")
    return stored


@route("GET", "/responses/{id}")
def get_response(ex: Exchange) -> None:
    stored = _stored(ex)
    if stored is None:
        return
    if ex.query.get("stream", [""])[0].lower() not in ("true", "1"):
        ex.send_json(200, stored.snapshot())
        return
    raw = ex.query.get("starting_after", ["-1"])[0]
    try:
        after = int(raw)
    except ValueError:
        ex.send_error(400, f"starting_after must be an integer, not {raw!r}", "invalid_value",
                      param="starting_after")
        return
    last = stored.last_sequence()
    if stored.finished and after >= last:
        ex.send_error(400, f"starting_after {after} is past the last event of {stored.id} "
                      f"(sequence number {last})", "invalid_value", param="starting_after")
        return
    mark_reply(ex)
    follow(ex, stored, after)


@route("POST", "/responses/{id}/cancel")
def cancel_response(ex: Exchange) -> None:
    stored = _stored(ex)
    if stored is None:
        return
    if not stored.background:
        ex.send_error(400, "Only background responses can be cancelled.", "invalid_request",
                      param="id")
        return
    if stored.finished and stored.status != "cancelled":
        ex.send_error(400, f"Cannot cancel a response with status '{stored.status}'.",
                      "invalid_request", param="id")
        return
    ex.server.store.cancel(stored.id)
    ex.send_json(200, stored.snapshot())
