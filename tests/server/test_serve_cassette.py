"""``codexapi serve --cassette PATH``: a recording served to any client, openai-python included
(its SDK parses the events, chunks, lists and errors strictly)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from conftest import ROOT, SHARED

from codexapi.cli.commands import main
from codexapi.testing import load_interactions, serve_cassette
from codexapi.testing.player import CassettePlayer

OWN = ROOT / "cassettes"
REAL = SHARED / "real-cassettes"


def oai(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=10)


@pytest.fixture
def served_cli() -> Iterator[str]:
    """The real command in a subprocess, on a free port; yields its base URL."""
    exe = Path(sys.executable).with_name("codexapi")
    proc = subprocess.Popen(
        [str(exe), "serve", "--port", "0", "--cassette", str(OWN / "responses_text.yaml")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("serving 1 interactions (POST /v1/responses) from "), first
        line = proc.stdout.readline()
        assert "embedded server on http://127.0.0.1:" in line, line
        yield line.split(" on ", 1)[1].split()[0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_cli_serves_a_project_cassette_to_openai_python(served_cli: str) -> None:
    recorded = load_interactions(OWN / "responses_text.yaml")[0].events()
    client = oai(served_cli)
    # openai-python builds its own body: the player falls back to the route's next recording.
    events = list(client.responses.create(model="gpt-5", input="anything", stream=True))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    final = recorded[-1]["response"]
    assert deltas == "You said: Hello there"
    assert events[-1].type == "response.completed"
    assert events[-1].response.id == final["id"]
    assert events[-1].response.output_text == deltas
    assert [e.type for e in events] == [e["type"] for e in recorded]


@pytest.mark.shared("real-cassettes")
def test_real_responses_stream_served_to_openai_python() -> None:
    path = REAL / "simonw-llm" / "test_responses_tool_use_streaming.yaml"
    recorded = load_interactions(path)
    with serve_cassette(path) as server:
        client = oai(server.base_url)
        first = list(client.responses.create(model="gpt-5", input="x", stream=True))
        second = list(client.responses.create(model="gpt-5", input="y", stream=True))
    [call] = [o for o in first[-1].response.output if o.type == "function_call"]
    done = [e["item"] for e in recorded[0].events()
            if e.get("type") == "response.output_item.done"]
    assert (call.name, call.arguments, call.call_id) == next(
        (i["name"], i["arguments"], i["call_id"]) for i in done if i["type"] == "function_call")
    text = "".join(e.delta for e in second if e.type == "response.output_text.delta")
    assert text and text == second[-1].response.output_text


@pytest.mark.shared("real-cassettes")
def test_real_chat_stream_models_and_error_served_to_openai_python() -> None:
    chat = REAL / "openllmetry" / "test_open_ai_function_calls_tools_streaming_parallel.yaml"
    with serve_cassette(chat) as server:
        chunks = list(oai(server.base_url).chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "x"}], stream=True))
    names = [tc.function.name for c in chunks for ch in c.choices
             for tc in (ch.delta.tool_calls or []) if tc.function and tc.function.name]
    assert len(names) == 2 and chunks[-1].choices[0].finish_reason == "tool_calls"

    listing = REAL / "llmrb-llm" / "successful_list.yaml"
    with serve_cassette(listing) as server:
        ids = [m.id for m in oai(server.base_url).models.list()]
    assert ids == [m["id"] for m in load_interactions(listing)[0].response_json()["data"]]

    error = REAL / "llmrb-llm" / "unauthorized_response.yaml"
    with serve_cassette(error) as server, pytest.raises(openai.AuthenticationError) as info:
        oai(server.base_url).chat.completions.create(
            model="gpt-4.1", messages=[{"role": "user", "content": "Hello!"}])
    assert info.value.status_code == 401
    assert "Incorrect API key provided: BADTOKEN" in str(info.value)


def test_a_request_the_cassette_lacks_gets_a_404_naming_it() -> None:
    with serve_cassette(OWN / "compact.yaml") as server, pytest.raises(
            openai.NotFoundError) as info:
        oai(server.base_url).models.list()
    assert "has no interaction for GET /v1/models" in str(info.value)
    assert "POST /v1/responses/compact" in str(info.value)


@pytest.mark.shared("real-cassettes")
def test_player_prefers_the_recording_whose_body_matches() -> None:
    path = REAL / "simonw-llm" / "test_responses_interleaved_reasoning_between_tool_calls.yaml"
    first, second = load_interactions(path)[:2]
    assert first.request_json() != second.request_json()
    player = CassettePlayer([first, second])
    # Asked for the second body first: that recording answers, then the other one.
    assert player.pick("POST", "/v1/responses", second.request_json()) is second
    assert player.pick("POST", "/v1/responses", {"other": True}) is first
    # Everything played: the route's last recording answers again.
    assert player.pick("POST", "/v1/responses", {"other": True}) is second


def test_cli_reports_a_bad_cassette(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("interactions:\n  - [\n")
    assert main(["serve", "--port", "0", "--cassette", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "CorruptCassetteError" in err and f"{bad}:3" in err


@pytest.mark.shared("real-cassettes")
def test_player_ignores_configured_fields_when_choosing() -> None:
    path = REAL / "simonw-llm" / "test_responses_interleaved_reasoning_between_tool_calls.yaml"
    interactions = load_interactions(path)
    last = interactions[-1]
    player = CassettePlayer(interactions, ignore_fields=["prompt_cache_key"])
    asked = {**last.request_json(), "prompt_cache_key": "volatile"}
    assert player.pick("POST", "/responses", asked) is last
    strict = CassettePlayer(interactions)
    # No exact match: the unplayed recording most like the request, even out of order.
    assert strict.pick("POST", "/responses", asked) is last
    other = {**interactions[1].request_json(), "prompt_cache_key": "volatile"}
    assert strict.pick("POST", "/responses", other) is interactions[1]
    assert strict.pick("POST", "/responses", {"model": "?"}) is interactions[0]  # on a tie
