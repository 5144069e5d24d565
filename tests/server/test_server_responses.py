"""The embedded server's Responses routes as the Codex CLI and openai-python use them: the model
list, WebSocket turns, remote compaction v2, schema-built tool arguments, structured output,
background responses (resume, cancel, faults), turn state, and bad input on each."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import ClientConnection, connect

from codexapi.server import EmbeddedServer
from codexapi.server.background import ResponseStore
from codexapi.server.catalog import MODELS_ETAG
from codexapi.server.faults import FAULT_HEADER, FAULT_ID_HEADER

pytestmark = pytest.mark.timeout(30)

HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=10))

EXEC_COMMAND = {
    "type": "function", "name": "exec_command", "strict": False,
    "parameters": {"type": "object", "additionalProperties": False, "required": ["cmd"],
                   "properties": {"cmd": {"type": "string"}, "workdir": {"type": "string"},
                                  "yield_time_ms": {"type": "number"}}}}


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as s:
        yield s


def call(server: EmbeddedServer, method: str, path: str, body: Any = None,
         headers: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
    data = None if body is None else json.dumps(body).encode()
    return HTTP.request(method, server.base_url + path, body=data,
                        headers={"Content-Type": "application/json", **(headers or {})},
                        preload_content=False)


def sse_events(response: urllib3.BaseHTTPResponse, limit: int | None = None,
               events: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """The JSON events of an SSE body (the first ``limit`` of them, then stop reading),
    appended to ``events`` as they arrive."""
    events = [] if events is None else events
    buffer = b""
    for chunk in response.stream(1024):
        buffer += chunk
        while b"\n\n" in buffer:
            message, buffer = buffer.split(b"\n\n", 1)
            for line in message.split(b"\n"):
                if line.startswith(b"data: "):
                    events.append(json.loads(line[6:]))
            if limit is not None and len(events) >= limit:
                return events
    return events


def turn(server: EmbeddedServer, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A non-streamed turn's response object."""
    response = call(server, "POST", "/responses", {"model": "gpt-5", **body}, **kw)
    assert response.status == 200, response.read()
    return dict(json.loads(response.read()))


def error_of(response: urllib3.BaseHTTPResponse, status: int) -> dict[str, Any]:
    assert response.status == status
    return dict(json.loads(response.read())["error"])


# -- models ----------------------------------------------------------------------------------

#: Fields of the Codex CLI 0.171 bundled catalog entry the server sends (reference capture).
CATALOG_FIELDS = {
    "slug", "display_name", "description", "default_reasoning_level",
    "supported_reasoning_levels", "shell_type", "visibility", "minimal_client_version",
    "supported_in_api", "priority", "model_messages", "prefer_websockets", "support_verbosity",
    "default_verbosity", "apply_patch_tool_type", "input_modalities", "truncation_policy",
    "supports_parallel_tool_calls", "context_window", "max_context_window",
    "auto_compact_token_limit", "default_reasoning_summary", "experimental_supported_tools",
    "supports_reasoning_summary_parameter", "supports_reasoning_summaries", "service_tiers",
}


def test_codex_model_list_has_todays_model_info_and_its_etag_rides_on_replies(
        server: EmbeddedServer) -> None:
    listed = call(server, "GET", "/models?client_version=0.171.0")
    models = json.loads(listed.read())["models"]
    for info in models:
        assert set(info) >= CATALOG_FIELDS
        assert info["model_messages"]["instructions_template"]
    assert listed.headers["ETag"] == MODELS_ETAG
    reply = call(server, "POST", "/responses", {"model": "gpt-5", "input": "hi"})
    reply.read()
    assert reply.headers["X-Models-Etag"] == MODELS_ETAG


def test_one_model_by_id(server: EmbeddedServer) -> None:
    one = json.loads(call(server, "GET", "/models/gpt-5").read())
    assert (one["id"], one["object"]) == ("gpt-5", "model")
    codex = json.loads(call(server, "GET", "/models/gpt-5?client_version=0.171.0").read())
    assert codex["slug"] == "gpt-5" and "model_messages" in codex
    assert error_of(call(server, "GET", "/models/nope"), 404)["code"] == "model_not_found"


# -- WebSocket -------------------------------------------------------------------------------

def ws(server: EmbeddedServer, **headers: str) -> ClientConnection:
    url = server.base_url.replace("http://", "ws://") + "/responses"
    return connect(url, additional_headers={"openai-beta": "responses_websockets=2026-02-06",
                                            **headers}, open_timeout=5)


def ws_turn(conn: ClientConnection, frame: dict[str, Any]) -> list[dict[str, Any]]:
    conn.send(json.dumps(frame))
    events = []
    while True:
        event = json.loads(conn.recv(timeout=5))
        events.append(event)
        if event["type"] in ("response.completed", "response.failed", "error"):
            return events


def test_websocket_turns_share_one_connection_and_the_scripted_model(
        server: EmbeddedServer) -> None:
    with ws(server) as conn:
        assert conn.response is not None
        assert conn.response.headers["X-Models-Etag"] == MODELS_ETAG
        assert conn.response.headers["x-codex-turn-state"].startswith("ts_")
        assert conn.response.headers["Sec-WebSocket-Extensions"].startswith(
            "permessage-deflate")
        first = ws_turn(conn, {"type": "response.create", "model": "gpt-5", "input": "one"})
        conn.send(json.dumps({"type": "response.processed",
                              "response_id": first[-1]["response"]["id"]}))
        second = ws_turn(conn, {"type": "response.create", "model": "gpt-5",
                                "input": "Please use a tool to run `ls -la`",
                                "tools": [EXEC_COMMAND]})
    text = "".join(e["delta"] for e in first if e["type"] == "response.output_text.delta")
    assert text == "You said: one"
    call_item = second[-1]["response"]["output"][0]
    assert json.loads(call_item["arguments"]) == {"cmd": "ls -la"}
    assert first[-1]["response"]["id"] != second[-1]["response"]["id"]
    assert [m for m, *_ in server.requests].count("WS") == 2
    assert server.httpd.connections_accepted == 1


def test_a_prewarm_frame_gets_a_response_without_output(server: EmbeddedServer) -> None:
    with ws(server) as conn:
        events = ws_turn(conn, {"type": "response.create", "model": "gpt-5", "input": "x",
                                "generate": False})
    assert [e["type"] for e in events] == ["response.created", "response.in_progress",
                                           "response.completed"]
    assert events[-1]["response"]["output"] == []


@pytest.mark.parametrize(("frame", "code"), [
    (b"\x00binary", "invalid_frame"),
    ("{not json", "invalid_json"),
    ("[1, 2]", "invalid_frame"),
    ('{"type": "session.update"}', "unknown_frame_type"),
    ('{"type": "response.create", "input": "no model"}', "invalid_body"),
    ('{"type": "response.create", "model": "gpt-5", "input": "use the tool", '
     '"tools": [{"type": "teleport"}]}', "unknown_tool_type"),
])
def test_bad_websocket_frames_get_an_error_event_and_the_connection_survives(
        server: EmbeddedServer, frame: str | bytes, code: str) -> None:
    with ws(server) as conn:
        conn.send(frame)
        error = json.loads(conn.recv(timeout=5))
        assert (error["type"], error["status"], error["error"]["code"]) == ("error", 400, code)
        assert error["error"]["message"]
        events = ws_turn(conn, {"type": "response.create", "model": "gpt-5", "input": "still"})
        assert events[-1]["type"] == "response.completed"


def test_a_broken_upgrade_is_a_plain_http_error(server: EmbeddedServer) -> None:
    response = HTTP.request("GET", server.base_url + "/responses",
                            headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert response.status == 400 and b"Sec-WebSocket-Key" in response.data
    assert call(server, "GET", "/models").status == 200  # the server is fine


def test_websocket_upgrades_need_a_key_when_the_server_has_keys(
        server: EmbeddedServer) -> None:
    from websockets.exceptions import InvalidStatus

    server.api_keys = ["sk-right"]
    with pytest.raises(InvalidStatus, match="401"):
        ws(server, Authorization="Bearer sk-wrong").close()
    with ws(server, Authorization="Bearer sk-right") as conn:
        events = ws_turn(conn, {"type": "response.create", "model": "gpt-5", "input": "k"})
    assert events[-1]["type"] == "response.completed"


def test_websocket_faults_act_per_turn(server: EmbeddedServer) -> None:
    with ws(server, **{FAULT_ID_HEADER: "ws-faults"}) as conn:
        error = ws_turn(conn, {"type": "response.create", "model": "fault:429x1:2",
                               "input": "x"})[-1]
        assert (error["type"], error["status"], error["headers"]) == (
            "error", 429, {"Retry-After": "2"})
        ok = ws_turn(conn, {"type": "response.create", "model": "fault:429x1:2", "input": "x"})
        assert ok[-1]["type"] == "response.completed"
        conn.send(json.dumps({"type": "response.create", "model": "fault:drop@2",
                              "input": "x"}))
        got = [json.loads(conn.recv(timeout=5)) for _ in range(2)]
        assert [e["type"] for e in got] == ["response.created", "response.in_progress"]
        with pytest.raises(ConnectionClosedError):
            conn.recv(timeout=5)


# -- compaction v2 ---------------------------------------------------------------------------

def test_remote_compaction_v2_answers_exactly_one_compaction_item(
        server: EmbeddedServer) -> None:
    meta = {"internal_chat_message_metadata_passthrough": {"turn_id": "t1"}}
    history = [{"type": "message", "role": "user", "content": "Say hello", **meta},
               {"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "You said: Say hello"}], **meta},
               {"type": "compaction_trigger"}]
    streamed = sse_events(call(server, "POST", "/responses", {
        "model": "gpt-5", "input": history, "stream": True, "reasoning": {"effort": "low"}}))
    (item,) = streamed[-1]["response"]["output"]
    assert item["type"] == "compaction" and item["encrypted_content"]
    assert [e["item"]["type"] for e in streamed if e["type"] == "response.output_item.done"] == [
        "compaction"]
    plain = turn(server, {"input": history})
    assert [i["type"] for i in plain["output"]] == ["compaction"]


# -- tools and structured output -------------------------------------------------------------

def first_output(response: dict[str, Any]) -> dict[str, Any]:
    return dict(response["output"][0])


def test_tool_arguments_follow_the_schema(server: EmbeddedServer) -> None:
    tool = {"type": "function", "name": "plan", "parameters": {
        "type": "object", "required": ["steps", "count", "urgent", "mode", "owner", "ratio"],
        "properties": {
            "steps": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "count": {"type": "integer", "minimum": 3},
            "urgent": {"type": "boolean"},
            "mode": {"enum": ["fast", "slow"]},
            "ratio": {"type": "number", "exclusiveMaximum": 0.5},
            "owner": {"$ref": "#/$defs/person"},
            "note": {"type": "string"}},
        "$defs": {"person": {"type": "object", "required": ["name"],
                             "properties": {"name": {"type": "string", "maxLength": 4}}}}}}
    item = first_output(turn(server, {"input": "use the tool", "tools": [tool]}))
    args = json.loads(item["arguments"])
    assert args == {"steps": ["use the tool", "use the tool"], "count": 3, "urgent": True,
                    "mode": "fast", "ratio": 0.0, "owner": {"name": "use "}}


def test_a_backticked_command_goes_to_the_command_tool(server: EmbeddedServer) -> None:
    other = {"type": "function", "name": "view_image",
             "parameters": {"type": "object", "required": ["path"],
                            "properties": {"path": {"type": "string"}}}}
    item = first_output(turn(server, {"input": "Please use a tool to run `echo hi`",
                                      "tools": [other, EXEC_COMMAND]}))
    assert (item["name"], json.loads(item["arguments"])) == ("exec_command", {"cmd": "echo hi"})
    shell = {"type": "function", "name": "shell", "parameters": {
        "type": "object", "required": ["command"],
        "properties": {"command": {"type": "array", "items": {"type": "string"}}}}}
    item = first_output(turn(server, {"input": "use `ls -l /tmp`", "tools": [shell]}))
    assert json.loads(item["arguments"]) == {"command": ["ls", "-l", "/tmp"]}


def test_namespace_custom_and_web_search_tools(server: EmbeddedServer) -> None:
    namespace = {"type": "namespace", "name": "agents", "description": "sub-agents",
                 "tools": [{"type": "function", "name": "spawn_agent",
                            "parameters": {"type": "object", "required": ["task"],
                                           "properties": {"task": {"type": "string"}}}}]}
    item = first_output(turn(server, {"input": "call the tool", "tools": [namespace]}))
    assert (item["name"], item["namespace"]) == ("spawn_agent", "agents")
    assert json.loads(item["arguments"]) == {"task": "call the tool"}
    custom = {"type": "custom", "name": "apply_patch", "format": {"type": "text"}}
    item = first_output(turn(server, {"input": "use `*** Begin Patch`", "tools": [custom]}))
    assert (item["type"], item["input"]) == ("custom_tool_call", "*** Begin Patch")
    searched = turn(server, {"input": "search the web for otters",
                             "tools": [{"type": "web_search", "external_web_access": False}]})
    assert [i["type"] for i in searched["output"]] == ["web_search_call", "message"]
    assert searched["output"][0]["action"]["query"] == "search the web for otters"
    # The follow-up of a custom tool call reports its output.
    back = turn(server, {"input": [{"type": "custom_tool_call_output", "call_id": "c1",
                                    "output": "patched"}]})
    assert back["output"][-1]["content"][0]["text"] == "Tool c1 returned: patched"


@pytest.mark.parametrize(("tools", "param", "code"), [
    ([{"type": "teleport", "name": "x"}], "tools[0].type", "unknown_tool_type"),
    ([{"type": "function", "name": "f", "parameters": {
        "type": "object", "required": ["n"], "properties": {
            "n": {"type": "integer", "minimum": 5, "maximum": 2}}}}], "tools",
     "invalid_tool_schema"),
    ("not a list", "tools", "invalid_request"),
])
def test_bad_tools_are_a_400_naming_them(server: EmbeddedServer, tools: Any, param: str,
                                         code: str) -> None:
    error = error_of(call(server, "POST", "/responses", {
        "model": "gpt-5", "input": "use the tool", "tools": tools, "stream": True}), 400)
    assert (error["param"], error["code"]) == (param, code)


def test_structured_output_parses_with_openai_python(server: EmbeddedServer) -> None:
    import openai
    import pydantic

    class Step(pydantic.BaseModel):
        explanation: str
        output: str

    class Solution(pydantic.BaseModel):
        steps: list[Step]
        final_answer: str
        confidence: float
        done: bool

    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    parsed = client.responses.parse(model="gpt-5", input="solve 8x + 7 = -23",
                                    text_format=Solution)
    solution = parsed.output_parsed
    assert isinstance(solution, Solution)
    assert solution.final_answer == "You said: solve 8x + 7 = -23" and solution.steps


def test_an_unsatisfiable_output_schema_is_a_400(server: EmbeddedServer) -> None:
    fmt = {"type": "json_schema", "name": "x", "strict": True,
           "schema": {"type": "object", "required": ["a"], "additionalProperties": False,
                      "properties": {"a": {"enum": []}}}}
    error = error_of(call(server, "POST", "/responses", {
        "model": "gpt-5", "input": "x", "text": {"format": fmt}}), 400)
    assert (error["code"], error["param"]) == ("invalid_json_schema", "text.format.schema")
    assert "empty `enum`" in error["message"]


# -- background responses --------------------------------------------------------------------

def wait_status(server: EmbeddedServer, rid: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        obj = dict(json.loads(call(server, "GET", f"/responses/{rid}").read()))
        if obj["status"] == status or time.monotonic() > deadline:
            return obj
        time.sleep(0.02)


def test_a_background_stream_resumes_after_a_disconnect(server: EmbeddedServer) -> None:
    server.httpd.background_interval = 0.01
    body = {"model": "gpt-5", "input": "one two three four five", "background": True,
            "stream": True}
    response = call(server, "POST", "/responses", body)
    head = sse_events(response, limit=3)
    response.close()  # the client goes away
    rid = head[0]["response"]["id"]
    assert head[0]["type"] == "response.queued" and head[0]["response"]["background"] is True
    done = wait_status(server, rid, "completed")
    assert done["output"][-1]["content"][0]["text"] == "You said: one two three four five"
    rest = sse_events(call(server, "GET", f"/responses/{rid}?stream=true&starting_after=2"))
    numbers = [e["sequence_number"] for e in head + rest]
    assert numbers == list(range(len(numbers))) and rest[-1]["type"] == "response.completed"


def test_a_resumed_stream_of_a_response_still_generating_skips_what_was_seen(
        server: EmbeddedServer) -> None:
    server.httpd.background_interval = 0.05
    started = turn(server, {"input": "a b c", "background": True})
    rest = sse_events(call(server, "GET",
                           f"/responses/{started['id']}?stream=true&starting_after=2"))
    numbers = [e["sequence_number"] for e in rest]
    assert numbers == list(range(3, 3 + len(numbers))) and rest[-1]["type"] == (
        "response.completed")


def test_a_fault_drops_a_background_stream_and_the_response_still_completes(
        server: EmbeddedServer) -> None:
    headers = {FAULT_HEADER: "dropx1@4", FAULT_ID_HEADER: "bg-drop"}
    response = call(server, "POST", "/responses", {
        "model": "gpt-5", "input": "alpha beta gamma", "background": True, "stream": True},
        headers)
    head: list[dict[str, Any]] = []
    with pytest.raises(urllib3.exceptions.ProtocolError):
        sse_events(response, events=head)
    assert [e["sequence_number"] for e in head] == [0, 1, 2, 3]
    assert server.faults.events_for("bg-drop") == [("dropx1@4", "dropped")]
    rid = head[0]["response"]["id"]
    # The drop consumed the plan's one use: the resumed stream is whole.
    rest = sse_events(call(server, "GET", f"/responses/{rid}?stream=true&starting_after=3",
                           headers=headers))
    assert rest[0]["sequence_number"] == 4 and rest[-1]["type"] == "response.completed"


def test_background_without_streaming_returns_at_once_and_cancel_stops_it(
        server: EmbeddedServer) -> None:
    server.httpd.background_interval = 0.2
    started = turn(server, {"input": "a b c d e f g h", "background": True})
    assert started["status"] in ("queued", "in_progress") and started["background"] is True
    cancelled = json.loads(call(server, "POST", f"/responses/{started['id']}/cancel").read())
    assert cancelled["status"] == "cancelled"
    assert wait_status(server, started["id"], "cancelled")["status"] == "cancelled"
    again = call(server, "POST", f"/responses/{started['id']}/cancel")
    assert json.loads(again.read())["status"] == "cancelled"  # cancelling twice is fine


def test_bad_background_requests_are_clear_errors(server: EmbeddedServer) -> None:
    assert error_of(call(server, "POST", "/responses/resp_nope/cancel"), 404)["param"] == "id"
    assert error_of(call(server, "GET", "/responses/resp_nope"), 404)["message"] == (
        "Response with id 'resp_nope' not found.")
    done = turn(server, {"input": "x"})  # stored (store defaults to true), not background
    error = error_of(call(server, "POST", f"/responses/{done['id']}/cancel"), 400)
    assert "background" in error["message"]
    last = len(sse_events(call(server, "GET", f"/responses/{done['id']}?stream=true"))) - 1
    past = error_of(call(server, "GET",
                         f"/responses/{done['id']}?stream=true&starting_after={last}"), 400)
    assert past["param"] == "starting_after" and "past the last event" in past["message"]
    bad = error_of(call(server, "GET", f"/responses/{done['id']}?stream=true&starting_after=x"),
                   400)
    assert bad["param"] == "starting_after"
    finished = turn(server, {"input": "x", "background": True})
    wait_status(server, finished["id"], "completed")
    error = error_of(call(server, "POST", f"/responses/{finished['id']}/cancel"), 400)
    assert "completed" in error["message"]
    no_store = error_of(call(server, "POST", "/responses", {
        "model": "gpt-5", "input": "x", "background": True, "store": False}), 400)
    assert no_store["param"] == "store"


def test_stored_responses_are_bounded(server: EmbeddedServer) -> None:
    server.httpd.store.max_responses = 2
    ids = [turn(server, {"input": f"n{i}"})["id"] for i in range(3)]
    assert len(server.httpd.store) == 2
    assert call(server, "GET", f"/responses/{ids[0]}").status == 404
    assert json.loads(call(server, "GET", f"/responses/{ids[2]}").read())["status"] == (
        "completed")
    assert server.httpd.store.get(turn(server, {"input": "x", "store": False})["id"]) is None
    assert ResponseStore().max_responses == 256


# -- previous_response_id --------------------------------------------------------------------

def test_previous_response_id_gives_the_model_the_earlier_turns(server: EmbeddedServer) -> None:
    first = turn(server, {"input": "one two three"})
    assert first["usage"]["input_tokens"] == 3 + 1
    second = turn(server, {"input": "four", "previous_response_id": first["id"]})
    # The model saw "one two three", its answer "You said: one two three", then "four".
    assert second["usage"]["input_tokens"] == 3 + 5 + 1 + 1
    assert second["output"][0]["content"][0]["text"] == "You said: four"
    # The chain goes on: the third turn sees both earlier ones.
    third = turn(server, {"input": "five", "previous_response_id": second["id"]})
    assert third["usage"]["input_tokens"] == 3 + 5 + 1 + 3 + 1 + 1
    # A background response can be continued from too, once it has output.
    bg = turn(server, {"input": "six seven", "background": True})
    wait_status(server, bg["id"], "completed")
    after = turn(server, {"input": "x", "previous_response_id": bg["id"]})
    assert after["usage"]["input_tokens"] == 2 + 4 + 1 + 1


def test_an_unknown_previous_response_is_a_400_in_the_api_shape(server: EmbeddedServer) -> None:
    error = error_of(call(server, "POST", "/responses", {
        "model": "gpt-5", "input": "x", "previous_response_id": "resp_gone"}), 400)
    assert error == {"message": "Previous response with id 'resp_gone' not found.",
                     "type": "invalid_request_error", "param": "previous_response_id",
                     "code": "previous_response_not_found"}
    unstored = turn(server, {"input": "x", "store": False})
    assert error_of(call(server, "POST", "/responses", {
        "model": "gpt-5", "input": "y", "previous_response_id": unstored["id"]}),
        400)["code"] == "previous_response_not_found"
    bad = error_of(call(server, "POST", "/responses", {
        "model": "gpt-5", "input": "y", "previous_response_id": 7}), 400)
    assert (bad["code"], bad["param"]) == ("invalid_type", "previous_response_id")
    # Forgotten (the store keeps the newest responses only): not found either.
    server.httpd.store.max_responses = 1
    old = turn(server, {"input": "a"})["id"]
    turn(server, {"input": "b"})
    assert error_of(call(server, "POST", "/responses", {
        "model": "gpt-5", "input": "c", "previous_response_id": old}),
        400)["code"] == "previous_response_not_found"


def test_a_chain_is_bounded_by_the_context_size(server: EmbeddedServer,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from codexapi.server import responses

    monkeypatch.setattr(responses, "MAX_CONTEXT", 500)
    rid = turn(server, {"input": "x" * 150})["id"]
    rid = turn(server, {"input": "y" * 150, "previous_response_id": rid})["id"]
    error = error_of(call(server, "POST", "/responses", {
        "model": "gpt-5", "input": "z" * 150, "previous_response_id": rid}), 400)
    assert error["code"] == "context_length_exceeded" and "start a new chain" in error["message"]


def test_a_websocket_continues_from_its_last_response_stored_or_not(
        server: EmbeddedServer) -> None:
    with ws(server) as conn:
        first = ws_turn(conn, {"type": "response.create", "model": "gpt-5",
                               "input": "one two", "store": False})[-1]["response"]
        second = ws_turn(conn, {"type": "response.create", "model": "gpt-5", "input": "three",
                                "store": False, "previous_response_id": first["id"]})
        assert second[-1]["response"]["usage"]["input_tokens"] == 2 + 4 + 1 + 1
        # Only the last one is kept on the connection.
        stale = ws_turn(conn, {"type": "response.create", "model": "gpt-5", "input": "x",
                               "previous_response_id": first["id"]})
        assert stale[-1]["type"] == "error"
        assert stale[-1]["error"]["code"] == "previous_response_not_found"
    with ws(server) as other:  # another connection has no last response of its own
        events = ws_turn(other, {"type": "response.create", "model": "gpt-5", "input": "x",
                                 "previous_response_id": second[-1]["response"]["id"]})
    assert events[-1]["error"]["code"] == "previous_response_not_found"


# -- turn state and fault ids ----------------------------------------------------------------

def test_turn_state_is_set_and_echoes_are_logged(server: EmbeddedServer) -> None:
    first = call(server, "POST", "/responses", {"model": "gpt-5", "input": "x"})
    first.read()
    state = first.headers["x-codex-turn-state"]
    again = call(server, "POST", "/responses", {"model": "gpt-5", "input": "x"},
                 {"x-codex-turn-state": state})
    again.read()
    assert again.headers["x-codex-turn-state"] == state
    assert list(server.httpd.turn_states_echoed) == [state]


@pytest.mark.parametrize("header", ["session-id", "thread-id", "session_id"])
def test_fault_counts_key_on_the_codex_session_headers(header: str) -> None:
    with EmbeddedServer(faults="500x1") as server:
        statuses = []
        for session in ("s1", "s1", "s2"):
            r = call(server, "POST", "/responses", {"model": "gpt-5", "input": "x"},
                     {header: session})
            r.read()
            statuses.append(r.status)
    assert statuses == [500, 200, 500]


def test_an_oversized_body_is_a_413(server: EmbeddedServer) -> None:
    response = HTTP.request("POST", server.base_url + "/responses", body=b"{}",
                            headers={"Content-Length": str(64 * 1024 * 1024)},
                            preload_content=False)
    assert response.status == 413


@pytest.mark.parametrize(("encoding", "status"), [("gzip", 200), ("deflate", 200),
                                                  ("br", 415)])
def test_compressed_request_bodies(server: EmbeddedServer, encoding: str, status: int) -> None:
    import gzip
    import zlib

    raw = json.dumps({"model": "gpt-5", "input": "packed"}).encode()
    data = gzip.compress(raw) if encoding == "gzip" else zlib.compress(raw)
    response = HTTP.request("POST", server.base_url + "/responses", body=data,
                            headers={"Content-Type": "application/json",
                                     "Content-Encoding": encoding})
    assert response.status == status
    if status == 200:
        assert json.loads(response.data)["output"][-1]["content"][0]["text"] == (
            "You said: packed")
    else:
        assert "Content-Encoding" in json.loads(response.data)["error"]["message"]


def test_a_gzip_bomb_is_a_413_not_a_memory_spike(server: EmbeddedServer) -> None:
    import gzip

    bomb = gzip.compress(b" " * (40 * 1024 * 1024))
    response = HTTP.request("POST", server.base_url + "/responses", body=bomb,
                            headers={"Content-Encoding": "gzip"})
    assert response.status == 413


def test_a_drop_at_every_position_resumes_to_the_whole_stream_exactly_once(
        server: EmbeddedServer) -> None:
    body = {"model": "gpt-5", "input": "the quick brown fox", "background": True,
            "stream": True}
    whole = sse_events(call(server, "POST", "/responses", body))
    for k in range(len(whole)):
        headers = {FAULT_HEADER: f"dropx1@{k}", FAULT_ID_HEADER: f"every-{k}"}
        got: list[dict[str, Any]] = []
        with pytest.raises(urllib3.exceptions.ProtocolError):
            sse_events(call(server, "POST", "/responses", body, headers), events=got)
        assert len(got) == k
        if not got:  # nothing arrived: no id to resume, the turn is simply sent again
            got = sse_events(call(server, "POST", "/responses", body, headers))
        else:
            rid, last = got[0]["response"]["id"], got[-1]["sequence_number"]
            got += sse_events(call(server, "GET", f"/responses/{rid}?stream=true"
                                   f"&starting_after={last}", headers=headers))
        assert [e["sequence_number"] for e in got] == list(range(len(whole)))
        assert [e["type"] for e in got] == [e["type"] for e in whole]
