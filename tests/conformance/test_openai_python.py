"""openai-python, a real third-party client, against the embedded server: proof that the server
speaks the actual Responses, Chat Completions and Models protocols (its SDK parses strictly
typed events and chunks)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import openai
import pytest

from codexapi.server import EmbeddedServer, ScriptedModel

SHELL_CHAT = {"type": "function", "function": {
    "name": "shell", "parameters": {"type": "object", "properties": {}}}}
SHELL_RESPONSES = {"type": "function", "name": "shell",
                   "parameters": {"type": "object", "properties": {}}}


def expected_text(prompt: str) -> str:
    return ScriptedModel().reply([{"role": "user", "content": prompt}]).text


@pytest.fixture
def oai(server: EmbeddedServer) -> Iterator[openai.OpenAI]:
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0,
                           timeout=10)
    yield client
    client.close()


def test_responses_create_stream(oai: openai.OpenAI) -> None:
    stream = oai.responses.create(model="gpt-5", input="Hello from openai", stream=True)
    events = list(stream)
    types = [e.type for e in events]
    assert types[0] == "response.created" and types[-1] == "response.completed"
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == expected_text("Hello from openai") == "You said: Hello from openai"
    assert events[-1].response.output_text == deltas
    assert events[-1].response.usage is not None


def test_responses_stream_helper_with_reasoning_and_tool_call(oai: openai.OpenAI) -> None:
    with oai.responses.stream(model="gpt-5", input="think, then call the tool",
                              tools=[SHELL_RESPONSES]) as stream:
        for _ in stream:
            pass
        final = stream.get_final_response()
    kinds = [item.type for item in final.output]
    assert kinds == ["reasoning", "function_call"]
    call = final.output[1]
    assert call.name == "shell"
    assert json.loads(call.arguments) == {}  # SHELL declares no parameters


def test_chat_completions_create_stream(oai: openai.OpenAI) -> None:
    stream = oai.chat.completions.create(
        model="gpt-5", messages=[{"role": "user", "content": "Hi chat"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected_text("Hi chat")
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens > 0
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_chat_completions_stream_helper_assembles_tool_calls(oai: openai.OpenAI) -> None:
    with oai.chat.completions.stream(
            model="gpt-5", messages=[{"role": "user", "content": "please use the tool"}],
            tools=[SHELL_CHAT]) as stream:
        for _ in stream:
            pass
        completion = stream.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "shell"
    assert json.loads(call.function.arguments) == {}
    # The tool result goes back as a `tool` message; the model reports it.
    follow = oai.chat.completions.create(model="gpt-5", messages=[
        {"role": "user", "content": "please use the tool"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "42"}])
    assert follow.choices[0].message.content == f"Tool {call.id} returned: 42"


def test_models_list(oai: openai.OpenAI) -> None:
    models = list(oai.models.list())
    assert [m.id for m in models][:2] == ["gpt-5", "gpt-5-codex"]
    assert all(m.object == "model" for m in models)


# --- the same, against `codexapi serve` in a subprocess --------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "codexapi", "serve", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        banner: list[str] = []
        reader = threading.Thread(target=lambda: banner.append(proc.stdout.readline()
                                                               if proc.stdout else ""),
                                  daemon=True)
        reader.start()
        reader.join(15)
        assert banner and f"127.0.0.1:{port}" in banner[0], f"server did not start: {banner}"
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stdout:
            proc.stdout.close()


def test_openai_python_against_codexapi_serve(served: str) -> None:
    with openai.OpenAI(base_url=served, api_key="sk-test", max_retries=0, timeout=10) as oai:
        events = list(oai.responses.create(model="gpt-5", input="over a socket", stream=True))
        assert events[-1].response.output_text == expected_text("over a socket")
        chunks = list(oai.chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "chat over a socket"}],
            stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == \
            expected_text("chat over a socket")
        assert "gpt-5" in [m.id for m in oai.models.list()]
