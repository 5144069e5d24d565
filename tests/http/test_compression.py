"""Compression on the wire: ``Accept-Encoding: zstd, gzip``, zstd and gzip responses decoded
transparently, zstd request bodies (``Provider(request_compression="zstd")``), and a body that
claims zstd but does not decode ending in a typed error."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from support.recording_transport import RESPONSES_DONE, RecordingTransport

from codexapi import Client, ConfigError, NoAuth, Provider, ResponsesRequest, StreamError
from codexapi.errors import TransportError
from codexapi.http.compression import accept_encoding, zstd_module

zstd = zstd_module()
needs_zstd = pytest.mark.skipif(zstd is None, reason="no zstd module (pip install "
                                "codexapi[zstd]); the test extra installs it")

SSE = (b'data: {"type":"response.output_text.delta","delta":"Hel"}\n\n'
       b'data: {"type":"response.output_text.delta","delta":"lo"}\n\n'
       b'data: {"type":"response.completed","response":{"id":"resp_z"}}\n\n')


class Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["content-length"]))
        if self.headers.get("content-encoding") == "zstd":
            assert zstd is not None
            raw = zstd.decompress(raw)
        Handler.seen.append({"headers": dict(self.headers), "body": json.loads(raw)})
        mode = self.path.split("/")[1]
        assert mode in ("plain", "gzip", "zstd", "badzstd"), self.path
        body = SSE
        if mode == "zstd":
            assert zstd is not None
            body = zstd.compress(SSE)
        elif mode == "gzip":
            body = gzip.compress(SSE)
        elif mode == "badzstd":
            body = b"\x28\xb5\x2f\xfd this is not a zstd frame at all"
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        if mode != "plain":
            self.send_header("content-encoding", "zstd" if "zstd" in mode else mode)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Handler.seen = []
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def turn(base_url: str, **provider: Any) -> str:
    with Client(Provider(base_url=base_url, proxy="", **provider), auth=NoAuth(),
                load_entrypoints=False) as client:
        return client.stream(ResponsesRequest(model="m", input="hi")).collect().text


@needs_zstd
def test_zstd_is_asked_for_when_it_can_be_decoded() -> None:
    assert accept_encoding() == "zstd, gzip"


@pytest.mark.parametrize("mode", ["plain", "gzip",
                                  pytest.param("zstd", marks=needs_zstd)])
def test_encoded_responses_are_decoded_transparently(base: str, mode: str) -> None:
    assert turn(f"{base}/{mode}/v1") == "Hello"
    assert Handler.seen[-1]["headers"]["Accept-Encoding"] == accept_encoding()
    assert "Content-Encoding" not in Handler.seen[-1]["headers"]


@needs_zstd
def test_zstd_request_bodies(base: str) -> None:
    assert turn(f"{base}/plain/v1", request_compression="zstd") == "Hello"
    seen = Handler.seen[-1]
    assert seen["headers"]["Content-Encoding"] == "zstd"
    assert seen["headers"]["Content-Type"] == "application/json"
    assert seen["body"]["input"][0]["content"][0]["text"] == "hi"


@needs_zstd
def test_a_zstd_body_that_does_not_decode_is_a_typed_final_error(base: str) -> None:
    with pytest.raises(StreamError, match="claims Content-Encoding 'zstd' but does not decode"
                       ) as info:
        turn(f"{base}/badzstd/v1")
    assert not info.value.retryable
    assert isinstance(info.value.__cause__, TransportError)


def test_unknown_request_compression_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="request_compression"):
        Provider(request_compression="brotli")


def test_request_compression_without_zstd_is_a_config_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import codexapi.http.compression as compression

    monkeypatch.setattr(compression, "zstd_module", lambda: None)
    transport = RecordingTransport(RESPONSES_DONE)
    with Client(Provider(request_compression="zstd"), auth=NoAuth(), load_entrypoints=False,
                transport=transport) as client, pytest.raises(ConfigError, match="zstd"):
        client.stream(ResponsesRequest(model="m"))
    assert transport.requests == []
