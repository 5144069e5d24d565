"""The scripted model as the other end of an agent's tool loop: a plan of several commands run
one call per turn (or in parallel), a patch for the freeform ``apply_patch`` tool, encrypted
reasoning the server verifies when it comes back, tools without parameters, the usage-limit
and other final 429 answers, and fault plans given per WebSocket turn."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import urllib3
from websockets.sync.client import connect

from codexapi import Client, Provider, ResponsesRequest, RetryPolicy
from codexapi.errors import ApiError, QuotaExceeded, UsageLimitReached, UsageNotIncluded
from codexapi.server import EmbeddedServer
from codexapi.server.faults import FAULT_HEADER, FAULT_ID_HEADER, FaultSpecError, parse

pytestmark = pytest.mark.timeout(30)

HTTP = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=10))

EXEC = {"type": "function", "name": "exec_command",
        "parameters": {"type": "object", "required": ["cmd"], "additionalProperties": False,
                       "properties": {"cmd": {"type": "string"}}}}
PATCH_TOOL = {"type": "custom", "name": "apply_patch", "description": "Edit files.",
              "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}
PATCH = "*** Begin Patch\n*** Add File: hello.txt\n+hello\n*** End Patch"


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as s:
        yield s


def post(server: EmbeddedServer, body: dict[str, Any],
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    response = HTTP.request("POST", server.base_url + "/responses",
                            body=json.dumps({"model": "gpt-5", **body}).encode(),
                            headers={"Content-Type": "application/json", **(headers or {})})
    return response.status, dict(response.headers), json.loads(response.data)


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": text}


def run_loop(server: EmbeddedServer, prompt: str, **body: Any
             ) -> tuple[list[list[dict[str, Any]]], str]:
    """Drive the tool loop as an agent would, answering each call with ``ran <args>``:
    (the tool calls of each response, the final text)."""
    history: list[dict[str, Any]] = [user(prompt)]
    rounds: list[list[dict[str, Any]]] = []
    for _ in range(6):
        status, _, reply = post(server, {"input": history, "tools": [EXEC, PATCH_TOOL], **body})
        assert status == 200, reply
        history += reply["output"]
        calls = [i for i in reply["output"] if i["type"] in ("function_call", "custom_tool_call")]
        if not calls:
            return rounds, reply["output"][-1]["content"][0]["text"]
        rounds.append(calls)
        for call in calls:
            kind = "function_call_output" if call["type"] == "function_call" else \
                "custom_tool_call_output"
            ran = call.get("arguments") or call.get("input")
            history.append({"type": kind, "call_id": call["call_id"], "output": f"ran {ran}"})
    raise AssertionError("the model never answered")


def test_a_plan_runs_one_command_per_turn_then_answers(server: EmbeddedServer) -> None:
    rounds, text = run_loop(server, "Use a tool to run `echo one`, then `echo two`, then "
                            "`echo three`", parallel_tool_calls=True)
    commands = [[json.loads(c["arguments"])["cmd"] for c in r] for r in rounds]
    assert commands == [["echo one"], ["echo two"], ["echo three"]]
    assert len({c["call_id"] for r in rounds for c in r}) == 3
    assert text.splitlines() == [f"Tool {r[0]['call_id']} returned: ran "
                                 f"{r[0]['arguments']}" for r in rounds]


def test_without_parallel_calls_a_plan_also_goes_one_per_turn(server: EmbeddedServer) -> None:
    rounds, _ = run_loop(server, "Use a tool to run `echo one` and `echo two`",
                         parallel_tool_calls=False)
    assert [len(r) for r in rounds] == [1, 1]


def test_parallel_calls_come_in_one_response(server: EmbeddedServer) -> None:
    rounds, text = run_loop(server, "Use a tool to run `echo one` and `echo two`",
                            parallel_tool_calls=True)
    (calls,) = rounds
    assert [json.loads(c["arguments"])["cmd"] for c in calls] == ["echo one", "echo two"]
    assert len(text.splitlines()) == 2
    # The API's default is parallel: a body without the field gets them together too.
    rounds, _ = run_loop(server, "Use a tool to run `echo one` and `echo two`")
    assert [len(r) for r in rounds] == [2]


def test_a_patch_in_the_prompt_goes_to_the_freeform_apply_patch_tool(
        server: EmbeddedServer) -> None:
    rounds, text = run_loop(server, f"Apply this:\n{PATCH}\nand then run `cat hello.txt`",
                            parallel_tool_calls=True)
    (patch,), (cat,) = rounds
    assert patch["type"] == "custom_tool_call" and patch["name"] == "apply_patch"
    assert patch["input"] == PATCH + "\n"
    assert json.loads(cat["arguments"]) == {"cmd": "cat hello.txt"}
    assert text.startswith(f"Tool {patch['call_id']} returned: ran *** Begin Patch")


def test_a_backticked_word_inside_a_patch_is_not_a_command(server: EmbeddedServer) -> None:
    patch = PATCH.replace("+hello", "+run `rm -rf /` later")
    rounds, _ = run_loop(server, f"Apply:\n{patch}")
    assert [c["name"] for r in rounds for c in r] == ["apply_patch"]


def test_a_tool_with_no_parameters_is_called_with_an_empty_object(
        server: EmbeddedServer) -> None:
    for parameters in ({"type": "object", "properties": {}}, {}, None):
        tool: dict[str, Any] = {"type": "function", "name": "llm_version"}
        if parameters is not None:
            tool["parameters"] = parameters
        _, _, reply = post(server, {"input": "use the tool", "tools": [tool]})
        (call,) = reply["output"]
        assert (call["name"], json.loads(call["arguments"])) == ("llm_version", {})


ENCRYPTED = {"store": False, "include": ["reasoning.encrypted_content"],
             "reasoning": {"effort": "low"}}


def test_encrypted_reasoning_comes_back_and_is_verified(server: EmbeddedServer) -> None:
    _, _, first = post(server, {"input": [user("Use a tool to run `ls`")], "tools": [EXEC],
                                **ENCRYPTED})
    reasoning, call = first["output"]
    token = reasoning["encrypted_content"]
    assert isinstance(token, str) and len(token) > 40
    assert reasoning["summary"][0]["text"] not in token  # opaque
    follow = [user("Use a tool to run `ls`"), reasoning, call,
              {"type": "function_call_output", "call_id": call["call_id"], "output": "a b"}]
    status, _, second = post(server, {"input": follow, "tools": [EXEC], **ENCRYPTED})
    assert status == 200 and second["output"][-1]["content"][0]["text"].endswith("a b")
    # Without `include`, reasoning items carry no ciphertext.
    _, _, plain = post(server, {"input": "think", "reasoning": {"effort": "low"}})
    assert "encrypted_content" not in plain["output"][0]


@pytest.mark.parametrize("tamper", [
    lambda t: t[:-6] + ("AAAAAA" if not t.endswith("AAAAAA") else "BBBBBB"),
    lambda t: t[:20],
    lambda t: "not base64 at all!",
])
def test_tampered_encrypted_reasoning_is_a_400(server: EmbeddedServer, tamper: Any) -> None:
    _, _, first = post(server, {"input": "think", **ENCRYPTED})
    reasoning = first["output"][0]
    bad = {**reasoning, "encrypted_content": tamper(reasoning["encrypted_content"])}
    status, _, body = post(server, {"input": [user("think"), bad, user("again")], **ENCRYPTED})
    assert status == 400
    assert body["error"]["code"] == "invalid_encrypted_content"
    assert body["error"]["param"] == "input[1].encrypted_content"
    assert reasoning["id"] in body["error"]["message"]


def test_another_servers_encrypted_reasoning_does_not_verify(server: EmbeddedServer) -> None:
    with EmbeddedServer() as other:
        _, _, first = post(other, {"input": "think", **ENCRYPTED})
    status, _, body = post(server, {"input": [user("x"), first["output"][0], user("y")]})
    assert (status, body["error"]["code"]) == (400, "invalid_encrypted_content")


def test_the_catalog_offers_parallel_calls_and_freeform_apply_patch(
        server: EmbeddedServer) -> None:
    models = json.loads(HTTP.request("GET", server.base_url
                                     + "/models?client_version=0.171.0").data)["models"]
    assert all(m["supports_parallel_tool_calls"] is True for m in models)
    assert all(m["apply_patch_tool_type"] == "freeform" for m in models)


def test_usage_limit_fault_answers_as_the_cli_expects(server: EmbeddedServer) -> None:
    before = int(time.time())
    status, headers, body = post(server, {"input": "hi"}, {FAULT_HEADER: "usage_limit:90"})
    error = body["error"]
    assert (status, error["type"], error["plan_type"]) == (429, "usage_limit_reached", "plus")
    assert error["resets_in_seconds"] == 90
    assert before + 90 <= error["resets_at"] <= int(time.time()) + 90
    assert headers["x-codex-primary-used-percent"] == "100"
    assert headers["x-codex-primary-reset-at"] == str(error["resets_at"])
    assert "Retry-After" not in headers and "retry-after-ms" not in headers


def client_for(server: EmbeddedServer) -> Client:
    return Client(Provider(name="e", base_url=server.base_url,
                           retry=RetryPolicy(max_attempts=3, base_delay=0.01)),
                  load_entrypoints=False)


@pytest.mark.parametrize(("plan", "error", "status", "code"), [
    ("usage_limit", UsageLimitReached, 429, "usage_limit_reached"),
    ("quota:usage_limit_reached", UsageLimitReached, 429, "usage_limit_reached"),
    ("quota:usage_not_included", UsageNotIncluded, 429, "usage_not_included"),
    ("quota:insufficient_quota", QuotaExceeded, 429, "insufficient_quota"),
    ("quota:billing_hard_limit_reached", QuotaExceeded, 429, "billing_hard_limit_reached"),
])
def test_final_429s_are_typed_and_sent_once(server: EmbeddedServer, plan: str,
                                            error: type[Exception], status: int,
                                            code: str) -> None:
    fid = uuid.uuid4().hex
    with client_for(server) as client, pytest.raises(error) as info:
        client.stream(ResponsesRequest(model="m", input="hi"),
                      headers={FAULT_HEADER: plan, FAULT_ID_HEADER: fid}).collect()
    assert isinstance(info.value, ApiError) and info.value.status == status
    assert code in json.dumps(info.value.body if isinstance(info.value.body, dict)
                              else str(info.value.body))
    assert len([r for r in server.requests if r[1] == "/responses"]) == 1  # never retried


@pytest.mark.parametrize(("kind", "err_type", "code"), [
    ("usage_not_included", "usage_not_included", None),
    ("insufficient_quota", "insufficient_quota", "insufficient_quota"),
    ("billing_hard_limit_reached", "insufficient_quota", "billing_hard_limit_reached"),
    ("account_deactivated", "invalid_request_error", "account_deactivated"),
])
def test_quota_bodies_are_the_apis(server: EmbeddedServer, kind: str, err_type: str,
                                   code: str | None) -> None:
    status, headers, body = post(server, {"input": "hi"}, {FAULT_HEADER: f"quota:{kind}"})
    assert (status, body["error"]["type"], body["error"]["code"]) == (429, err_type, code)
    assert body["error"]["message"] and "resets_at" not in body["error"]
    assert "Retry-After" not in headers


def test_a_bad_quota_type_is_named() -> None:
    with pytest.raises(FaultSpecError, match="quota needs one of usage_limit_reached"):
        parse("quota:whatever")


def test_a_websocket_turn_carries_its_own_fault_plan(server: EmbeddedServer) -> None:
    url = server.base_url.replace("http://", "ws://") + "/responses"

    def turn(ws: Any, **extra: Any) -> dict[str, Any]:
        ws.send(json.dumps({"type": "response.create", "model": "gpt-5", "input": "hi",
                            **extra}))
        while True:
            event = json.loads(ws.recv(timeout=5))
            if event["type"] in ("response.completed", "error"):
                return dict(event)

    with connect(url, additional_headers={FAULT_HEADER: "500"}) as ws:
        # The upgrade's plan applies to every turn, unless a turn brings its own.
        assert turn(ws)["status"] == 500
        meta = {FAULT_HEADER: "usage_limit:30", FAULT_ID_HEADER: "ws-turn"}
        limited = turn(ws, client_metadata=meta)
        assert limited["status"] == 429 and limited["error"]["type"] == "usage_limit_reached"
        assert limited["headers"]["x-codex-primary-used-percent"] == "100"
        assert server.faults.events_for("ws-turn") == [("usage_limit:30", "fired")]
        assert turn(ws, client_metadata={FAULT_HEADER: "ratelimits"})["type"] == \
            "response.completed"
