"""The embedded server's Chat Completions route, the Chat wire end to end against it, and the
``models`` / ``compact`` / ``chat --wire chat`` commands."""

from __future__ import annotations

import json
import re
import shlex
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, make_client

from codexapi import (
    Completed,
    FunctionCall,
    FunctionCallOutput,
    Message,
    OutputItemDone,
    ReasoningContentDelta,
    ResponsesRequest,
    WireApi,
)
from codexapi.cli.commands import main
from codexapi.server import EmbeddedServer
from codexapi_plugins.wire_chat import ChatIncludeUsage

SHELL = {"type": "function", "name": "shell", "description": "run a command",
         "parameters": {"type": "object", "properties": {"input": {"type": "string"}}}}


def post(server: EmbeddedServer, path: str, body: Any) -> tuple[int, str, bytes]:
    request = urllib.request.Request(server.base_url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


def sse_data(raw: bytes) -> list[str]:
    return [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]


def test_streamed_chunks_are_openai_shaped(server: EmbeddedServer) -> None:
    status, ctype, raw = post(server, "/chat/completions", {
        "model": "gpt-5", "stream": True,
        "messages": [{"role": "user", "content": "Hello there"}]})
    assert status == 200 and ctype.startswith("text/event-stream")
    data = sse_data(raw)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-5"
               for c in chunks)
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == "You said: Hello there"
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "stop"
    assert all("usage" not in c for c in chunks)


def test_usage_chunk_only_when_asked(server: EmbeddedServer) -> None:
    _, _, raw = post(server, "/chat/completions", {
        "model": "m", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "count these words"}]})
    chunks = [json.loads(d) for d in sse_data(raw)[:-1]]
    assert chunks[-1]["choices"] == []
    usage = chunks[-1]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert all(c["usage"] is None for c in chunks[:-1])


def test_tool_call_fragments_and_reasoning(server: EmbeddedServer) -> None:
    _, _, raw = post(server, "/chat/completions", {
        "model": "m", "stream": True, "tools": [{"type": "function", "function": {
            "name": "shell", "parameters": {}}}],
        "messages": [{"role": "user", "content": "think, then call the tool"}]})
    chunks = [json.loads(d) for d in sse_data(raw)[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("reasoning", "") for d in deltas).startswith("The user wrote")
    fragments = [f for d in deltas for f in d.get("tool_calls", [])]
    assert fragments[0]["function"]["name"] == "shell" and fragments[0]["id"]
    assert all(f["index"] == 0 for f in fragments)
    arguments = "".join(f["function"]["arguments"] for f in fragments)
    assert json.loads(arguments) == {}  # a tool with no parameters gets none
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_reasoning_effort_asks_for_reasoning(server: EmbeddedServer) -> None:
    _, _, raw = post(server, "/chat/completions", {
        "model": "m", "stream": True, "reasoning_effort": "low",
        "messages": [{"role": "user", "content": "plain question"}]})
    deltas = [json.loads(d)["choices"][0]["delta"] for d in sse_data(raw)[:-1]]
    assert "".join(d.get("reasoning", "") for d in deltas) == \
        "The user wrote 2 words; answer plainly."
    _, _, raw = post(server, "/chat/completions", {
        "model": "m", "messages": [{"role": "user", "content": "plain question"}]})
    assert "reasoning" not in json.loads(raw)["choices"][0]["message"]


def test_unstreamed_completion(server: EmbeddedServer) -> None:
    status, ctype, raw = post(server, "/chat/completions", {
        "model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert status == 200 and ctype == "application/json"
    body = json.loads(raw)
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == "You said: hi"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] > 0


@pytest.mark.parametrize("body", [
    [], {"messages": [{"role": "user", "content": "x"}]}, {"model": "m"},
    {"model": "m", "messages": []}, {"model": "m", "messages": [{}], "tools": "x"},
])
def test_bad_chat_bodies_get_a_400_error_object(server: EmbeddedServer, body: Any) -> None:
    status, _, raw = post(server, "/chat/completions", body)
    assert status == 400
    assert json.loads(raw)["error"]["message"]


# --- the Chat wire end to end ---------------------------------------------------------------


def test_chat_wire_echo(server: EmbeddedServer) -> None:
    with make_client(server, WireApi.CHAT) as client:
        result = client.stream(ResponsesRequest(model="gpt-5", input="Hello!")).collect()
    assert result.text == "You said: Hello!"
    assert [i.type for i in result.items] == ["message"]
    assert result.items[0].role == "assistant" and result.items[0].text == result.text
    assert result.response_id is not None and result.response_id.startswith("chatcmpl-")
    assert result.usage is None  # the crate's body does not ask for usage


def test_chat_wire_usage_with_the_include_usage_plugin(server: EmbeddedServer) -> None:
    with make_client(server, WireApi.CHAT, plugins=[ChatIncludeUsage()]) as client:
        result = client.stream(ResponsesRequest(model="gpt-5", input="two words")).collect()
    assert result.usage is not None
    assert result.usage.output_tokens == len(["You", "said:", "two", "words"])
    assert isinstance(result.events[-1], Completed)


def test_chat_wire_reasoning_and_tool_round_trip(server: EmbeddedServer) -> None:
    with make_client(server, WireApi.CHAT) as client:
        first = client.stream(ResponsesRequest(
            model="m", input="think and use the tool", tools=[SHELL])).collect()
        assert any(isinstance(e, ReasoningContentDelta) for e in first.events)
        assert [i.type for i in first.items] == ["reasoning", "function_call"]
        call = first.function_calls[0]
        assert call.name == "shell"
        assert json.loads(call.arguments) == {"input": "think and use the tool"}
        history = [Message(role="user", content="think and use the tool"),
                   *(i.to_dict() for i in first.items),
                   FunctionCallOutput(call_id=call.call_id, output="done: 42")]
        second = client.stream(ResponsesRequest(model="m", input=history,
                                                tools=[SHELL])).collect()
    assert second.text == f"Tool {call.call_id} returned: done: 42"
    # The replayed reasoning went out anchored on the tool call, as the crate sends it.
    _, path, _, body = server.requests[-1]
    assert path == "/chat/completions"
    assert body["messages"][2]["tool_calls"][0]["id"] == call.call_id
    assert body["messages"][2]["reasoning"].startswith("The user wrote")


def test_same_request_same_answer_on_both_wires(server: EmbeddedServer) -> None:
    request = ResponsesRequest(model="m", instructions="Be brief.", input=[
        Message(role="user", content="use it"),
        FunctionCall(name="shell", arguments="{}", call_id="c9"),
        FunctionCallOutput(call_id="c9", output="ok")], tools=[SHELL])
    texts = []
    for wire in (WireApi.RESPONSES, WireApi.CHAT):
        with make_client(server, wire) as client:
            events = list(client.stream(request))
        done = [e.item for e in events if isinstance(e, OutputItemDone)]
        texts.append([i.text for i in done if i.type == "message"])
    assert texts[0] == texts[1] == ["Tool c9 returned: ok"]


# --- CLI ------------------------------------------------------------------------------------


def test_cli_chat_on_the_chat_wire(server: EmbeddedServer,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["chat", "--wire", "chat", "--base-url", server.base_url, "Hi CLI"]) == 0
    assert capsys.readouterr().out == "You said: Hi CLI\n"
    assert server.requests[-1][1] == "/chat/completions"


def test_cli_chat_wire_chat_offline(capsys: pytest.CaptureFixture[str]) -> None:
    # No base URL: the CLI starts its own embedded server.
    assert main(["chat", "--wire", "chat", "offline"]) == 0
    assert capsys.readouterr().out == "You said: offline\n"


def test_cli_models(server: EmbeddedServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--base-url", server.base_url]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t")[0] == "gpt-5"
    assert main(["models", "--base-url", server.base_url, "--json",
                 "--client-version", "0.60.0"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["etag"].startswith('"') and data["models"][0]["slug"] == "gpt-5"
    assert server.requests[-1][1] == "/models"


def test_cli_compact(server: EmbeddedServer, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compact", "--base-url", server.base_url, "remember this"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert items[0]["content"][0]["text"] == "remember this"
    assert items[-1]["type"] == "compaction"
    history = tmp_path / "history.json"
    history.write_text(json.dumps({"input": [
        {"type": "message", "role": "user", "content": "one"},
        {"type": "message", "role": "assistant", "content": "two"}]}))
    assert main(["compact", "--base-url", server.base_url, "--input", str(history),
                 "three"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [i["content"][0]["text"] for i in items if i["type"] == "message"] == ["one", "three"]


def test_cli_compact_errors(server: EmbeddedServer, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compact", "--base-url", server.base_url, "--wire", "chat", "x"]) == 1
    assert "compact endpoint requires responses wire api" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["compact", "--base-url", server.base_url, "--input", str(bad)]) == 2
    assert "is not JSON" in capsys.readouterr().err
    assert main(["compact", "--base-url", server.base_url]) == 2
    assert "nothing to compact" in capsys.readouterr().err


def test_readme_endpoint_commands_run(server: EmbeddedServer,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", readme, flags=re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines()
             if line.startswith(("codexapi models", "codexapi compact",
                                 "codexapi chat --wire chat"))]
    assert len(lines) >= 4
    for line in lines:
        assert main([*shlex.split(line)[1:], "--base-url", server.base_url]) == 0, line
        assert capsys.readouterr().out.strip()
