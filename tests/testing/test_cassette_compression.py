"""Compressed bodies in cassettes: a request body sent zstd- or gzip-encoded, and a response
body that came back zstd-encoded, are stored decoded and scrubbed by the one rule (no spelling
of a key survives in compressed form), and the cassette still replays."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import urllib3
import yaml
from support.answer_server import Answer, AnswerServer, Seen

import codexapi
from codexapi import BearerAuth, Client, Provider, ResponsesRequest, RetryPolicy
from codexapi.http.compression import zstd_module
from codexapi.server import EmbeddedServer
from codexapi.testing import use_cassette
from codexapi.testing.formats import Interaction
from codexapi.testing.scrub import DECODED_ENCODING_HEADER, Scrubber
from tests.support.echo_server import spellings

zstd = zstd_module()
pytestmark = pytest.mark.skipif(zstd is None, reason="no zstd module (pip install "
                                "codexapi[zstd]); the test extra installs it")

KEY = "sk-proj-Zq9xWv7Ub3Ts1Rp5On2Ml8Kj4Ih6Gf0EdC"
REQ = ResponsesRequest(model="gpt-5", input="Hello")


def leaks(path: Path, key: str = KEY) -> list[str]:
    """The spellings of ``key`` in the file as written or in any string YAML decodes from it
    (a ``!!binary`` body included), and in any of its bodies' zstd or gzip frames decoded."""
    text = path.read_text(encoding="utf-8")
    doc = yaml.safe_load(text)
    texts = [text, repr(doc)]
    for it in doc["interactions"]:
        for body in (it["request"]["body"], it["response"]["body"]["string"]):
            data = body.encode() if isinstance(body, str) else body or b""
            assert zstd is not None
            if data[:4] == b"\x28\xb5\x2f\xfd":
                texts.append(zstd.decompress(data).decode("utf-8", "replace"))
            if data[:2] == b"\x1f\x8b":
                texts.append(gzip.decompress(data).decode("utf-8", "replace"))
    joined = "\n".join(texts)
    return [s for s in spellings(key) if s in joined]


class GatewayAuth:
    """Puts the key inside the zstd-compressed JSON body, in a field no rule names, and
    (``header``) in a header too."""

    def __init__(self, header: bool) -> None:
        self.header = header

    def auth_flow(self, request: Any) -> Iterator[Any]:
        assert zstd is not None and request.headers["Content-Encoding"] == "zstd"
        body = json.loads(zstd.decompress(request.body))
        body["proof"] = KEY
        headers = {**request.headers, **({"X-Gateway-Auth": KEY} if self.header else {})}
        yield attrs.evolve(request, headers=headers,
                           body=zstd.compress(json.dumps(body).encode()))


def zstd_client(base_url: str, header: bool = True) -> Client:
    provider = Provider(base_url=base_url, request_compression="zstd", proxy="",
                        retry=RetryPolicy(max_attempts=1))
    return Client(provider, auth=GatewayAuth(header), load_entrypoints=False)


@pytest.mark.parametrize("header", [True, False], ids=["body-and-header", "body-only"])
def test_a_zstd_request_body_is_stored_decoded_scrubbed_and_replays(tmp_path: Path,
                                                                    header: bool) -> None:
    path = tmp_path / "zstd.yaml"
    with EmbeddedServer() as server:
        with use_cassette(path, record_mode="all"), \
                zstd_client(server.base_url, header) as client:
            recorded = client.stream(REQ).collect().text
        sent = server.requests[-1]
    assert sent[3]["proof"] == KEY  # the server got the key: it is really in the body
    assert leaks(path) == []
    request = yaml.safe_load(path.read_text())["interactions"][0]["request"]
    body = json.loads(request["body"])
    assert body["model"] == "gpt-5" and body["proof"] == "<redacted>"
    assert request["headers"][DECODED_ENCODING_HEADER] == ["zstd"]
    assert "Content-Encoding" not in request["headers"]
    with use_cassette(path, record_mode="none") as cassette, \
            zstd_client("http://127.0.0.1:9/v1", header) as client:
        assert client.stream(REQ).collect().text == recorded
        assert cassette.play_count == 1


def test_a_gzip_request_body_with_a_secret_named_field_is_stored_decoded(
        tmp_path: Path) -> None:
    path = tmp_path / "gzip.yaml"
    body = gzip.compress(json.dumps({"model": "gpt-5", "input": "x", "api_key": KEY}).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    pool = urllib3.PoolManager()
    with EmbeddedServer() as server:
        url = server.base_url + "/responses"
        with use_cassette(path, record_mode="all"):
            assert pool.request("POST", url, body=body, headers=headers).status == 200
    assert leaks(path) == []
    stored = yaml.safe_load(path.read_text())["interactions"][0]["request"]
    assert json.loads(stored["body"])["api_key"] == "<redacted>"
    with use_cassette(path, record_mode="none") as cassette:
        assert pool.request("POST", url, body=body, headers=headers).status == 200
        assert cassette.play_count == 1


def test_a_zstd_response_body_is_stored_decoded_scrubbed_and_replays(tmp_path: Path) -> None:
    # Through urllib3, vcrpy is handed the body decoded (with the header kept).
    assert zstd is not None
    events = [{"type": "response.output_text.delta", "delta": f"key {KEY} echoed"},
              {"type": "response.completed", "response": {"id": "resp_1"}}]
    sse = "".join(f"data: {json.dumps(e)}\n\n" for e in events).encode()

    def answer(seen: Seen) -> Answer:
        return Answer(200, zstd.compress(sse), {"content-type": "text/event-stream",
                                                "content-encoding": "zstd"})

    path = tmp_path / "zstd-response.yaml"
    with AnswerServer(answer) as server:
        provider = Provider(base_url=server.url + "/v1", proxy="")
        with use_cassette(path, record_mode="all"), \
                Client(provider, auth=BearerAuth(KEY), load_entrypoints=False) as client:
            assert client.stream(REQ).collect().text == f"key {KEY} echoed"
    assert leaks(path) == []
    response = yaml.safe_load(path.read_text())["interactions"][0]["response"]
    assert "echoed" in response["body"]["string"]
    assert "content-encoding" not in {k.lower() for k in response["headers"]}
    provider = Provider(base_url="http://127.0.0.1:9/v1", proxy="")
    with use_cassette(path, record_mode="none"), \
            Client(provider, auth=BearerAuth(KEY), load_entrypoints=False) as client:
        assert client.stream(REQ).collect().text == "key <redacted> echoed"


def test_a_request_body_too_large_to_decode_is_not_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from codexapi.testing import scrub

    monkeypatch.setattr(scrub, "MAX_DECODED_BODY", 1000)
    path = tmp_path / "big.yaml"
    body = gzip.compress(json.dumps({"api_key": KEY, "input": "x" * 5000}).encode())
    with EmbeddedServer() as server, use_cassette(path, record_mode="all"), \
            pytest.raises(codexapi.CodexApiError, match="too large to record"):
        urllib3.PoolManager().request(
            "POST", server.base_url + "/responses", body=body,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert not path.exists() or leaks(path) == []


def test_a_response_handed_over_still_zstd_encoded_is_stored_decoded() -> None:
    # As requests or httpx hand vcrpy a body: the bytes on the wire.
    from vcr.request import Request

    assert zstd is not None
    scrubber = Scrubber()
    scrubber.request(Request("POST", "http://127.0.0.1:1/v1/responses", b"{}",
                             {"Authorization": f"Bearer {KEY}"}))
    body = json.dumps({"error": {"message": f"bad key {KEY}"}}).encode()
    stored = scrubber.response({
        "status": {"code": 401, "message": "Unauthorized"},
        "headers": {"Content-Encoding": ["zstd"], "Content-Length": ["99"]},
        "body": {"string": zstd.compress(body)}})
    assert stored["body"]["string"] == body.replace(KEY.encode(), b"<redacted>")
    assert stored["headers"] == {"Content-Length": [str(len(stored["body"]["string"]))]}
    interaction = Interaction("POST", "u", (), None, 200, "", (("Content-Encoding", "zstd"),),
                              zstd.compress(body))
    assert interaction.decoded_body == body
