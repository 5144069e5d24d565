"""User scripts (``codexapi serve --script FILE``, ``EmbeddedServer(script=...)``): every match
and reply key, ``times``, ``unmatched``, each route the scripted model serves (Responses over
HTTP and WebSocket, Chat, compact), and bad scripts reported in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from websockets.sync.client import connect

from codexapi import Client, Provider, ResponsesRequest, RetryPolicy, WireApi
from codexapi.cli.commands import main
from codexapi.errors import ConfigError, StreamError, UsageLimitReached
from codexapi.server import EmbeddedServer
from codexapi.server.script import Script, ScriptError

pytestmark = pytest.mark.timeout(30)

HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=10))

WEATHER = {
    "rules": [
        {"match": {"input": r"weather in (\w+)"},
         "reply": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "$1"}}]}},
        {"match": {"tool_output": "sunny"},
         "reply": {"text": "It is sunny.", "reasoning": "The tool said so."}},
        {"match": {"input": "limit"},
         "reply": {"error": {"status": 429, "type": "usage_limit_reached",
                             "resets_in_seconds": 60}}},
        {"match": {"input": "flaky"}, "reply": {"text": "eventually", "fault": "drop@3"},
         "times": 1},
    ],
    "unmatched": "scripted",
}


def served(script: Any) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(script=script) as server:
        yield server


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    yield from served(WEATHER)


def post(server: EmbeddedServer, body: dict[str, Any], path: str = "/responses",
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    response = HTTP.request("POST", server.base_url + path,
                            body=json.dumps({"model": "gpt-5", **body}).encode(),
                            headers={"Content-Type": "application/json", **(headers or {})})
    return response.status, json.loads(response.data)


def text(reply: Any) -> str:
    return str(reply["output"][-1]["content"][0]["text"])


def client_for(server: EmbeddedServer, wire: str = WireApi.RESPONSES) -> Client:
    return Client(Provider(name="s", base_url=server.base_url, wire=wire,
                           retry=RetryPolicy(max_attempts=1), stream_idle_timeout=5),
                  load_entrypoints=False)


# -- the example, end to end ----------------------------------------------------------


def test_a_tool_loop_follows_the_script(server: EmbeddedServer) -> None:
    prompt = {"role": "user", "content": "What is the weather in Paris?"}
    _, first = post(server, {"input": [prompt]})
    (call,) = first["output"]
    assert (call["name"], json.loads(call["arguments"])) == ("get_weather", {"city": "Paris"})
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
    _, second = post(server, {"input": [prompt, call, output]})
    assert [i["type"] for i in second["output"]] == ["reasoning", "message"]
    assert second["output"][0]["summary"][0]["text"] == "The tool said so."
    assert text(second) == "It is sunny."
    # A rule testing `input` does not call the tool again when its output comes back.
    rainy = {**output, "output": "rain"}
    _, third = post(server, {"input": [prompt, call, rainy]})
    assert text(third).startswith(f"Tool {call['call_id']} returned: rain")


def test_the_usage_limit_error_reaches_a_client_typed(server: EmbeddedServer) -> None:
    before = int(time.time())
    with client_for(server) as client, pytest.raises(UsageLimitReached) as info:
        client.create(ResponsesRequest(model="gpt-5", input="over the limit"))
    assert info.value.status == 429 and info.value.resets_at is not None
    assert before + 59 <= info.value.resets_at.timestamp() <= time.time() + 61
    assert len(server.requests) == 1


def test_times_spends_a_rule_and_the_next_one_answers(server: EmbeddedServer) -> None:
    with client_for(server) as client:
        with pytest.raises(StreamError, match="disconnected"):  # drop@3: the stream is cut
            client.create(ResponsesRequest(model="gpt-5", input="flaky"))
        again = client.create(ResponsesRequest(model="gpt-5", input="flaky"))
    assert again.text == "You said: flaky"  # spent: unmatched, so the scripted model


def test_unmatched_requests_go_to_the_scripted_model(server: EmbeddedServer) -> None:
    _, reply = post(server, {"input": "hello"})
    assert text(reply) == "You said: hello"


def test_unmatched_error_names_the_text_and_the_rules_missed() -> None:
    script = {**WEATHER, "unmatched": "error"}
    for server in served(script):
        status, reply = post(server, {"input": "hello there"})
    error = reply["error"]
    assert (status, error["code"]) == (400, "script_unmatched")
    assert "'hello there'" in error["message"]
    assert r"rule 1 (input /weather in (\w+)/)" in error["message"]
    assert "rule 4 (input /flaky/)" in error["message"]


# -- match keys --------------------------------------------------------------------------------


def test_model_header_and_turn_matches() -> None:
    script = {"rules": [
        {"match": {"model": "^mini$"}, "reply": {"text": "small model"}},
        {"match": {"header": {"X-Tenant": "^acme$"}}, "reply": {"text": "hello acme"}},
        {"match": {"turn": 2}, "reply": {"text": "second turn"}},
        {"match": {"turn": [3, 4]}, "reply": {"text": "later turn"}},
        {"reply": {"text": "anything else"}},
    ]}
    earlier = [{"role": "user", "content": "a"},
               {"type": "message", "role": "assistant", "content": "b"}]
    for server in served(script):
        assert text(post(server, {"input": "x", "model": "mini"})[1]) == "small model"
        assert text(post(server, {"input": "x", "model": "mini-2"})[1]) == "anything else"
        assert text(post(server, {"input": "x"}, headers={"x-tenant": "acme"})[1]) == \
            "hello acme"
        assert text(post(server, {"input": [*earlier, {"role": "user", "content": "c"}]})[1]) \
            == "second turn"
        three = [*earlier, *earlier, {"role": "user", "content": "c"}]
        assert text(post(server, {"input": three})[1]) == "later turn"
        assert text(post(server, {"input": "x"})[1]) == "anything else"


def test_input_and_tool_output_groups_and_a_literal_dollar() -> None:
    script = {"rules": [{"match": {"input": "price of (\\w+)", "tool_output": "(\\d+) EUR"},
                         "reply": {"text": "$1 costs $2 EUR ($$$2)"}}]}
    items = [{"role": "user", "content": "the price of tea"},
             {"type": "function_call", "name": "p", "call_id": "c", "arguments": "{}"},
             {"type": "function_call_output", "call_id": "c", "output": "12 EUR"}]
    for server in served(script):
        assert text(post(server, {"input": items})[1]) == "tea costs 12 EUR ($12)"


# -- reply keys --------------------------------------------------------------------------------


def test_text_streams_as_deltas_with_usage() -> None:
    script = {"rules": [{"reply": {"text": "one two three four", "usage": {
        "input_tokens": 100, "output_tokens": 7, "cached_tokens": 40,
        "reasoning_tokens": 3}}}]}
    for server in served(script):
        with client_for(server) as client:
            with client.stream(ResponsesRequest(model="gpt-5", input="hi")) as events:
                deltas = [e.delta for e in events if type(e).__name__ == "OutputTextDelta"]
            result = client.create(ResponsesRequest(model="gpt-5", input="hi"))
    assert deltas == ["one", " two", " three", " four"]
    usage = result.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (100, 7, 107)
    assert usage.cached_input_tokens == 40 and usage.reasoning_output_tokens == 3


def test_custom_and_several_tool_calls() -> None:
    script = {"rules": [{"reply": {"tool_calls": [
        {"name": "apply_patch", "input": "*** Begin Patch\n*** End Patch", "custom": True},
        {"name": "lookup", "arguments": {"q": ["a", 1]}}]}}]}
    for server in served(script):
        _, reply = post(server, {"input": "go"})
    custom, function = reply["output"]
    assert (custom["type"], custom["input"]) == ("custom_tool_call",
                                                 "*** Begin Patch\n*** End Patch")
    assert function["type"] == "function_call"
    assert json.loads(function["arguments"]) == {"q": ["a", 1]}
    assert custom["call_id"] != function["call_id"]


def test_error_keys_go_into_the_error_object() -> None:
    script = {"rules": [{"reply": {"error": {
        "status": 503, "type": "server_error", "code": "server_is_overloaded",
        "message": "Busy: $1", "retry_hint": "later"}}, "match": {"input": "(now)"}}]}
    for server in served(script):
        status, reply = post(server, {"input": "now"})
    assert status == 503
    assert reply == {"error": {"type": "server_error", "code": "server_is_overloaded",
                               "message": "Busy: now", "retry_hint": "later",
                               "param": None}}


def test_a_delay_holds_the_head() -> None:
    for server in served({"rules": [{"reply": {"delay": 0.4}}]}):
        start = time.monotonic()
        status, reply = post(server, {"input": "slow"})
    assert time.monotonic() - start >= 0.4
    assert (status, text(reply)) == (200, "You said: slow")  # no words: the scripted model's


def test_a_fault_only_reply_keeps_the_scripted_answer() -> None:
    script = {"rules": [{"reply": {"fault": "500x1"}}]}
    for server in served(script):
        assert post(server, {"input": "a"})[0] == 500
        assert text(post(server, {"input": "a"})[1]) == "You said: a"


# -- routes ------------------------------------------------------------------------------------


def test_the_script_answers_over_websocket(server: EmbeddedServer) -> None:
    url = server.base_url.replace("http://", "ws://") + "/responses"
    with connect(url) as ws:
        outcomes = []
        for prompt in ("weather in Oslo", "limit", "hello"):
            ws.send(json.dumps({"type": "response.create", "model": "gpt-5", "input": prompt}))
            while (event := json.loads(ws.recv(timeout=5)))["type"] not in (
                    "response.completed", "error"):
                pass
            outcomes.append(event)
    call = outcomes[0]["response"]["output"][0]
    assert json.loads(call["arguments"]) == {"city": "Oslo"}
    assert outcomes[1]["status"] == 429
    assert outcomes[1]["error"]["type"] == "usage_limit_reached"
    assert outcomes[2]["response"]["output"][0]["content"][0]["text"] == "You said: hello"


def test_the_script_answers_on_chat(server: EmbeddedServer) -> None:
    with client_for(server, WireApi.CHAT) as client:
        result = client.create(ResponsesRequest(model="gpt-5", input="weather in Rome"))
        assert json.loads(result.function_calls[0].arguments) == {"city": "Rome"}
        with pytest.raises(UsageLimitReached):
            client.create(ResponsesRequest(model="gpt-5", input="limit"))
    status, raw = post(server, {"messages": [
        {"role": "user", "content": "weather in Rome"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather",
                                                          "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"}]}, "/chat/completions")
    assert status == 200
    assert raw["choices"][0]["message"]["content"] == "It is sunny."
    assert raw["choices"][0]["message"]["reasoning"] == "The tool said so."


def test_the_script_answers_compact() -> None:
    script = {"rules": [{"match": {"input": "boom"}, "reply": {"error": {"status": 400,
                                                                         "code": "nope"}}},
                        {"reply": {"text": "A short summary.", "usage": {"output_tokens": 9}}}]}
    for server in served(script):
        status, reply = post(server, {"input": [{"role": "user", "content": "hi"}]},
                             "/responses/compact")
        assert status == 200
        content = reply["output"][-1]["encrypted_content"]
        assert "A short summary." in str(__import__("base64").b64decode(content.split(":")[1]))
        assert reply["usage"]["output_tokens"] == 9
        status, reply = post(server, {"input": [{"role": "user", "content": "boom"}]},
                             "/responses/compact")
        assert (status, reply["error"]["code"]) == (400, "nope")


def test_a_websocket_prewarm_is_not_scripted() -> None:
    script = {"rules": [{"reply": {"error": {"status": 500}}}]}
    for server in served(script):
        url = server.base_url.replace("http://", "ws://") + "/responses"
        with connect(url) as ws:
            ws.send(json.dumps({"type": "response.create", "model": "gpt-5", "input": [],
                                "generate": False}))
            assert json.loads(ws.recv(timeout=5))["type"] == "response.created"


# -- loading and bad scripts -------------------------------------------------------------------


def test_yaml_and_json_files_load(tmp_path: Path) -> None:
    yaml_file = tmp_path / "rules.yaml"
    yaml_file.write_text('rules:\n  - match: {input: "weather in (\\\\w+)"}\n'
                         '    reply: {text: "Weather in $1"}\nunmatched: error\n')
    json_file = tmp_path / "rules.json"
    json_file.write_text(json.dumps(WEATHER))
    loaded = Script.load(yaml_file)
    assert (len(loaded.rules), loaded.unmatched) == (1, "error")
    assert len(Script.load(json_file).rules) == 4
    for server in served(yaml_file):
        assert text(post(server, {"input": "weather in Rome"})[1]) == "Weather in Rome"


def test_yaml_without_pyyaml_says_what_to_install(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml now fails
    path = tmp_path / "rules.yaml"
    path.write_text("rules: []\n")
    with pytest.raises(ScriptError, match=r"rules\.yaml: YAML scripts need PyYAML: pip "
                                          r"install 'codexapi\[serve\]'"):
        Script.load(path)
    path.write_text(json.dumps(WEATHER))  # JSON text loads whatever the suffix
    assert len(Script.load(path).rules) == 4


BAD = [
    ("[]", "a script is a mapping with `rules`"),
    ("rules: {}", "`rules` must be a list of rules"),
    ("rules: []\nunmatched: maybe", "unmatched: 'maybe' is not one of scripted, error"),
    ("rules: []\nrule: []", "unknown key 'rule' (known: rules, unmatched)"),
    ("rules: [hello]", "rule 1: a rule is a mapping with `match` and `reply`, not a string"),
    ("rules: [{match: {input: a}}]", "rule 1: has no `reply`"),
    ("rules: [{reply: {text: a}}, {reply: {text: b}, when: x}]",
     "rule 2: unknown key 'when' (known: match, reply, times)"),
    ("rules: [{reply: {text: a}, times: 0}]", "rule 1: times: must be a whole number"),
    ("rules: [{match: {input: 'weather in ('}, reply: {text: a}}]",
     "rule 1: match.input: invalid regular expression 'weather in ('"),
    ("rules: [{match: {user: a}, reply: {text: a}}]",
     "rule 1: match: unknown key 'user' (known: input, tool_output, model, header, turn)"),
    ("rules: [{match: {header: x}, reply: {text: a}}]",
     "rule 1: match.header: must be a mapping of header name to regex"),
    ("rules: [{match: {turn: 0}, reply: {text: a}}]", "rule 1: match.turn: must be a turn"),
    ("rules: [{match: {model: 3}, reply: {text: a}}]",
     "rule 1: match.model: must be a regular expression (a string), not a number"),
    ("rules: [{reply: {txt: a}}]", "rule 1: reply: unknown key 'txt'"),
    ("rules: [{reply: {text: [a]}}]", "rule 1: reply.text: must be a string, not a list"),
    ("rules: [{reply: {tool_calls: []}}]", "rule 1: reply.tool_calls: must be a non-empty"),
    ("rules: [{reply: {tool_calls: [{arguments: {}}]}}]",
     "rule 1: reply.tool_calls[0]: needs a `name`"),
    ("rules: [{reply: {tool_calls: [{name: f, arguments: [1]}]}}]",
     "rule 1: reply.tool_calls[0].arguments: must be a mapping, not a list"),
    ("rules: [{reply: {tool_calls: [{name: f, input: x}]}}]",
     "rule 1: reply.tool_calls[0]: `input` is for custom calls"),
    ("rules: [{reply: {tool_calls: [{name: f, arguments: {}, custom: true}]}}]",
     "rule 1: reply.tool_calls[0]: a custom call takes `input`"),
    ("rules: [{reply: {error: {type: x}}}]",
     "rule 1: reply.error.status: must be an HTTP error status (400-599), not None"),
    ("rules: [{reply: {error: {status: 200}}}]", "reply.error.status: must be an HTTP error"),
    ("rules: [{reply: {fault: 'explode@2'}}]", "rule 1: reply.fault: unknown fault 'explode'"),
    ("rules: [{reply: {delay: -1}}]", "rule 1: reply.delay: must be seconds within 0..3600"),
    ("rules: [{reply: {usage: {tokens: 3}}}]", "rule 1: reply.usage: unknown key 'tokens'"),
    ("rules: [{reply: {usage: {input_tokens: -3}}}]",
     "rule 1: reply.usage.input_tokens: must be a whole number of tokens"),
    ("rules: [{reply: {text: a}}\n", "line 2: not valid YAML"),
]


@pytest.mark.parametrize(("content", "problem"), BAD)
def test_a_bad_script_is_one_line_naming_file_rule_and_problem(
        tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(ScriptError) as info:
        EmbeddedServer(script=path)
    message = str(info.value)
    assert isinstance(info.value, ConfigError)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert problem in message


def test_a_bad_json_script_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"rules": [\n  {"reply": }\n]}')
    with pytest.raises(ScriptError, match=r"bad\.json: line 2: not valid JSON"):
        Script.load(path)
    with pytest.raises(ScriptError, match=r"missing\.json: no such script file"):
        Script.load(tmp_path / "missing.json")


def test_a_python_mapping_is_checked_the_same_way() -> None:
    with pytest.raises(ConfigError, match=r"^<script>: rule 1: reply.delay: must be seconds"):
        EmbeddedServer(script={"rules": [{"reply": {"delay": "soon"}}]})


def test_serve_with_a_bad_script_exits_2_with_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("rules: [{reply: {text: a}}, {match: {input: '('}, reply: {text: b}}]")
    assert main(["serve", "--port", "0", "--script", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert str(path) in err and "rule 2: match.input: invalid regular expression" in err


def test_serve_answers_by_a_script(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(WEATHER))
    exe = Path(sys.executable).with_name("codexapi")
    proc = subprocess.Popen([str(exe), "serve", "--port", "0", "--script", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(f"answering by 4 rules from {path}")
        base_url = proc.stdout.readline().split(" on ", 1)[1].split()[0]
        response = HTTP.request("POST", base_url + "/responses", body=json.dumps(
            {"model": "gpt-5", "input": "weather in Lima"}).encode(),
            headers={"Content-Type": "application/json"})
        (call,) = json.loads(response.data)["output"]
        assert json.loads(call["arguments"]) == {"city": "Lima"}
    finally:
        proc.terminate()
        proc.wait(timeout=10)
