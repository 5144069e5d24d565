"""``Provider.query_params`` reach the server as given, on every endpoint: names and values are
percent-encoded into the URL (the crate appends them verbatim, so ``&``, ``#``, ``=``, ``%``, a
space or non-ASCII broke the query), and a secret one is still kept out of logs and errors."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from support.answer_server import Answer, AnswerServer, Seen, completed

import codexapi
from codexapi import BearerAuth, Client, Provider, ResponsesRequest, RetryPolicy
from codexapi.http.urls import join
from tests.support.echo_server import spellings

AWKWARD = {
    "api-version": "2025-04-01-preview",
    "amp": "a&b=c",
    "hash": "x#not-a-fragment",
    "pct": "100% %41 done",
    "plus": "a+b c",
    "eq": "==",
    "semi": "one;two",
    "utf8": "naïve ☃ 𝄞",
    "odd name&x=y": "v",
    "empty": "",
}
REQ = ResponsesRequest(model="m", input="Hi")


def answer(seen: Seen) -> Answer:
    path = urlsplit(seen.path).path
    if seen.headers.get("upgrade", "").lower() == "websocket":
        return Answer(426, {"error": {"message": "no WebSocket here"}})
    if path.endswith("/responses/compact"):
        return Answer(200, {"output": []})
    if path.endswith("/models"):
        return Answer(200, {"models": []})
    return completed()


def query_of(seen: Seen) -> dict[str, list[str]]:
    return parse_qs(urlsplit(seen.path).query, keep_blank_values=True, strict_parsing=True)


def provider(server: AnswerServer, **kw: Any) -> Provider:
    return Provider(name="q", base_url=server.url + "/v1?base=kept", query_params=AWKWARD,
                    retry=RetryPolicy(max_attempts=1), stream_max_retries=0,
                    read_timeout=5.0, connect_timeout=5.0, proxy="", **kw)


def test_every_endpoint_sends_the_query_params_as_given() -> None:
    expected = {"base": ["kept"], **{k: [v] for k, v in AWKWARD.items()}}
    with AnswerServer(answer) as server:
        with Client(provider(server), auth=BearerAuth("sk-test"),
                    load_entrypoints=False) as client:
            assert client.stream(REQ).collect().text == "ok"
            assert client.compact(REQ) == []
            client.list_models(client_version="1.2 beta&x")
        ws = provider(server, wire="responses_websocket")
        with Client(ws, auth=BearerAuth("sk-test"), load_entrypoints=False) as client:
            # The upgrade is refused (426): the turn goes over HTTP instead.
            assert client.stream(REQ).collect().text == "ok"
        seen = list(server.seen)
    paths = [urlsplit(s.path).path for s in seen]
    assert paths == ["/v1/responses", "/v1/responses/compact", "/v1/models", "/v1/responses",
                     "/v1/responses"]
    assert seen[3].headers.get("upgrade", "").lower() == "websocket"
    for one in seen:
        query = query_of(one)
        if one.path.startswith("/v1/models"):
            assert query.pop("client_version") == ["1.2 beta&x"]
        assert query == expected, one.path


def test_usual_values_keep_the_crates_spelling() -> None:
    assert join("https://x/v1", "responses", {"api-version": "2025-04-01-preview"}) == (
        "https://x/v1/responses?api-version=2025-04-01-preview")
    assert join("https://x/v1", "m", {"a": "b&c", "é": "x y"}) == (
        "https://x/v1/m?a=b%26c&%C3%A9=x%20y")


def test_a_secret_query_value_with_url_syntax_stays_out_of_logs_and_errors(
        caplog: pytest.LogCaptureFixture) -> None:
    key = "sk-q&k=y#z%41 é+end-0123456789"

    def refuse(seen: Seen) -> Answer:
        value = query_of(seen)["api_key"][0]
        return Answer(401, json.dumps({"error": {"message": f"bad key {value}"}}).encode(),
                      {"x-request-id": "req_1"})

    caplog.set_level(logging.DEBUG)
    with AnswerServer(refuse) as server:
        prov = Provider(name="q", base_url=server.url + "/v1",
                        query_params={"api_key": key, "x": "1"},
                        retry=RetryPolicy(max_attempts=1), proxy="")
        with Client(prov, auth=BearerAuth("sk-unrelated-000"),
                    load_entrypoints=False) as client:
            with pytest.raises(codexapi.ApiError) as caught:
                client.stream(REQ).collect()
            shown = [str(caught.value), repr(caught.value), repr(caught.value.__dict__),
                     repr(client), repr(prov), caplog.text]
        received = query_of(server.seen[0])
    assert received["api_key"] == [key]  # it was sent whole: the echo is a real one
    text = "\n".join(shown)
    assert "bad key" in text
    assert [s for s in spellings(key) if s in text] == []
