"""Size bounds: SSE messages, unary bodies, decompressed bodies (gzip bombs), measured in RSS.

A 2.1 MB gzip body that inflates to 2 GiB is sent to a stream, to compact and to models; each
ends in ResponseTooLarge, and the client process's peak RSS (measured in a subprocess, so the
server's own memory is not counted) rises by far less than the bomb's size.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Generator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from support.hostile import RawRequest, RawServer, head

from codexapi import (
    Client,
    HttpRequest,
    NoAuth,
    Provider,
    ResponsesRequest,
    ResponseTooLarge,
    RetryPolicy,
    StreamError,
)
from codexapi.http.compression import accept_encoding, zstd_module
from codexapi.http.transport import CHUNK_SIZE, HttpResponse
from codexapi.sse import Decoder
from codexapi.testing.transport import _Inflater

pytestmark = pytest.mark.timeout(60)

MIB = 1 << 20
#: A peak RSS increase that still counts as "held near the bound" for the default bounds
#: (32 MiB messages, 64 MiB unary bodies, 256 MiB inflated), against a 2 GiB bomb.
RSS_BUDGET_MB = 300


@cache
def bomb(mib: int = 2048, fill: bytes = b"\0") -> bytes:
    """A gzip member inflating to ``mib`` MiB of ``fill``: one compressed MiB block, repeated
    (a full flush resets the compressor, so every block compresses to the same bytes)."""
    block = fill * MIB
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    repeat = c.compress(block) + c.flush(zlib.Z_FULL_FLUSH)
    tail = c.flush()[:-8]
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    return first + repeat * (mib - 1) + tail + struct.pack("<II", crc, (mib * MIB) & 0xFFFFFFFF)


@cache
def zstd_bomb(mib: int = 2048, fill: bytes = b"a") -> bytes | None:
    """Concatenated zstd frames inflating to ``mib`` MiB of ``fill`` (each frame one MiB),
    or None without a zstd module."""
    zstd = zstd_module()
    return None if zstd is None else zstd.compress(fill * MIB) * mib


def bomb_handler(content_type: str, body: bytes,  # type: ignore[no-untyped-def]
                 encoding: str = "gzip"):
    def handle(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(head("200 OK", Content_Type=content_type, Content_Encoding=encoding,
                          Content_Length=str(len(body))))
        with contextlib.suppress(OSError):  # the client stops reading at its bound
            conn.sendall(body)
    return handle


PROBE = r"""
import json, sys
import codexapi
from codexapi import Client, NoAuth, Provider, ResponsesRequest, RetryPolicy
provider = Provider(base_url=sys.argv[1], retry=RetryPolicy.never())
client = Client(provider, auth=NoAuth(), load_entrypoints=False)
req = ResponsesRequest(model="m", input="hi")
def status(field):
    # Linux: VmRSS is the resident size now, VmHWM its peak so far (kB).
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith(field + ":"))
if len(sys.argv) > 3:
    # A memory limit (address space, MB above what the process maps now): past it an
    # allocation is a MemoryError, which must never be what a bomb ends in.
    import resource
    cap = (status("VmSize") + int(sys.argv[3]) * 1024) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
before = status("VmRSS")
error = None
try:
    if sys.argv[2] == "stream":
        client.stream(req).collect()
    elif sys.argv[2] == "compact":
        client.compact(req)
    else:
        client.list_models("1.0")
except codexapi.CodexApiError as exc:
    error = [type(exc).__name__, getattr(exc, "setting", None)]
after = status("VmHWM")
print(json.dumps({"error": error, "rise_mb": (after - before) / 1024, "peak_mb": after / 1024}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
@pytest.mark.parametrize(("endpoint", "content_type", "setting"), [
    ("stream", "text/event-stream", "max_message_bytes"),
    ("compact", "application/json", "max_body_bytes"),
    ("models", "application/json", "max_body_bytes"),
])
def test_a_2_gib_bomb_holds_memory_near_the_bound(endpoint: str, content_type: str,
                                                  setting: str, encoding: str) -> None:
    if encoding == "gzip":
        body = bomb(fill=b"a")
        assert len(body) < 2.2e6
    else:
        zbody = zstd_bomb()
        if zbody is None or accept_encoding() == "gzip":
            if os.environ.get("CI"):
                raise AssertionError("CI must install codexapi[test], which brings zstd")
            pytest.skip("needs a zstd module (codexapi[zstd]) that urllib3 decodes with")
        body = zbody
    with RawServer(bomb_handler(content_type, body, encoding)) as srv:
        result = probe(srv.base_url, endpoint)
    print(f"{encoding} bomb {len(body) / 1e6:.2f} MB -> 2 GiB on {endpoint}: {result}")
    assert result["error"] == ["ResponseTooLarge", setting]
    assert result["rise_mb"] < RSS_BUDGET_MB


def probe(base_url: str, endpoint: str, *memory_limit_mb: int) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-c", PROBE, base_url, endpoint,
                           *map(str, memory_limit_mb)],
                          capture_output=True, text=True, timeout=50,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_one_500_mb_data_line_without_a_newline_holds_memory_near_the_bound() -> None:
    size = 500 * 10**6

    def handle(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(head("200 OK", Content_Type="text/event-stream",
                          Content_Length=str(size + 6)) + b"data: ")
        block = b"x" * MIB
        with contextlib.suppress(OSError):  # the client hangs up at its bound
            for _ in range(size // MIB):
                conn.sendall(block)

    with RawServer(handle) as srv:
        result = probe(srv.base_url, "stream")
    print(f"one 500 MB data: line without a newline: {result}")
    assert result["error"] == ["ResponseTooLarge", "max_message_bytes"]
    assert result["rise_mb"] < RSS_BUDGET_MB


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("endpoint", ["stream", "compact", "models"])
def test_under_a_memory_limit_a_bomb_is_a_typed_error_not_a_memory_error(endpoint: str
                                                                         ) -> None:
    # The reproduction: under a 1 GiB limit a 2 GiB bomb was a bare MemoryError.
    content_type = "text/event-stream" if endpoint == "stream" else "application/json"
    with RawServer(bomb_handler(content_type, bomb(fill=b"a"))) as srv:
        result = probe(srv.base_url, endpoint, 1024)
    assert result["error"] is not None and result["error"][0] == "ResponseTooLarge", result


def test_a_compressed_stream_is_bounded_by_its_decompressed_size() -> None:
    event = b'data: {"type":"response.output_text.delta","delta":"abc"}\n\n'
    raw = event * (4 * MIB // len(event))
    with RawServer(bomb_handler("text/event-stream", zlib.compress(raw, wbits=31))) as srv:
        provider = Provider(base_url=srv.base_url, retry=RetryPolicy.never(),
                            max_decompressed_bytes=MIB)
        with (Client(provider, auth=NoAuth(), load_entrypoints=False) as client,
              pytest.raises(ResponseTooLarge) as info):
                client.stream(ResponsesRequest(model="m", input="hi")).collect()
    assert info.value.setting == "max_decompressed_bytes" and info.value.limit == MIB
    assert "Provider.max_decompressed_bytes" in str(info.value)
    assert not info.value.retryable


def test_unary_bodies_are_bounded_even_uncompressed() -> None:
    body = json.dumps({"output": [{"type": "message", "content": "x" * 200_000}]}).encode()

    def handle(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(head(Content_Type="application/json", Content_Length=str(len(body))) + body)

    with RawServer(handle) as srv:
        provider = Provider(base_url=srv.base_url, retry=RetryPolicy.never(),
                            max_body_bytes=100_000)
        with Client(provider, auth=NoAuth(), load_entrypoints=False) as client:
            with pytest.raises(ResponseTooLarge, match="max_body_bytes"):
                client.compact(ResponsesRequest(model="m", input="hi"))
            big = Provider(base_url=srv.base_url, retry=RetryPolicy.never())
            with Client(big, auth=NoAuth(), load_entrypoints=False) as ok:
                assert len(ok.compact(ResponsesRequest(model="m", input="hi"))) == 1
    assert len(srv.requests) == 2  # a too-large body is not retried


def test_one_endless_sse_line_is_bounded() -> None:
    dec = Decoder(max_message=10_000)
    dec.feed(b"data: {}\n\n")
    with pytest.raises(ResponseTooLarge, match="max_message_bytes") as info:
        for _ in range(1000):
            dec.feed(b"data: " + b"x" * 100)
    assert isinstance(info.value, StreamError) and info.value.limit == 10_000
    # A complete message over the bound, arriving whole, is refused too.
    with pytest.raises(ResponseTooLarge):
        Decoder(max_message=100).feed(b"data: " + b"z" * 200 + b"\n\n")
    # Below the bound a large message passes whole, however it was split.
    dec = Decoder(max_message=10_000)
    parts = [b"data: ", b"y" * 5000, b"y" * 4000, b"\n\n"]
    assert [m.data for p in parts for m in dec.feed(p)] == ["y" * 9000]


def test_a_retry_field_of_5000_digits_is_ignored() -> None:
    dec = Decoder()
    out = dec.feed(b"retry: " + b"9" * 5000 + b"\ndata: a\n\nretry: 1500\ndata: b\n\n")
    assert [(m.data, m.retry) for m in out] == [("a", None), ("b", 1500)]


def test_the_inflater_never_inflates_a_chunk_in_one_piece() -> None:
    # The path for http.client responses (cassette replays): pieces of at most CHUNK_SIZE.
    data = bomb(64)
    inflater = _Inflater()
    total = 0
    for i in range(0, len(data), 256 * 1024):
        for piece in inflater.feed(data[i:i + 256 * 1024]):
            assert len(piece) <= CHUNK_SIZE
            total += len(piece)
    total += len(inflater.flush())
    assert total == 64 * MIB


def test_bounds_are_validated() -> None:
    with pytest.raises(ValueError, match="max_message_bytes"):
        Provider(max_message_bytes=0)


#: Just above the default ``max_body_bytes`` (64 MiB): only a raised bound lets it through.
BIG = 66 * MIB


@cache
def big_body(endpoint: str) -> bytes:
    pad = "x" * (BIG - 200)
    if endpoint == "compact":
        return json.dumps({"output": [{"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": pad}]}]}).encode()
    return json.dumps({"models": [{"slug": "big", "pad": pad}]}).encode()


@pytest.mark.parametrize("endpoint", ["compact", "models"])
def test_max_body_bytes_is_the_bound_raised_or_lowered(endpoint: str) -> None:
    # The transport reads a unary body with the provider's bound, not one of its own: a
    # raised bound lets a body past the default through, a lowered one stops a small body.
    body = big_body(endpoint)
    assert BIG - MIB < len(body) <= BIG

    def handle(conn: socket.socket, request: RawRequest) -> None:
        conn.sendall(head(Content_Type="application/json", Content_Length=str(len(body))))
        with contextlib.suppress(OSError):  # the client stops reading at a bound
            conn.sendall(body)

    def call(**bounds: int) -> Any:
        provider = Provider(base_url=srv.base_url, retry=RetryPolicy.never(), **bounds)
        with Client(provider, auth=NoAuth(), load_entrypoints=False) as client:
            if endpoint == "compact":
                return client.compact(ResponsesRequest(model="m", input="hi"))
            return client.list_models("1.0").models

    with RawServer(handle) as srv:
        with pytest.raises(ResponseTooLarge) as info:
            call()
        assert (info.value.setting, info.value.limit) == ("max_body_bytes", 64 * MIB)
        items = call(max_body_bytes=80 * MIB)
        raw = items[0].raw
        text = raw["content"][0]["text"] if endpoint == "compact" else raw["pad"]
        assert len(items) == 1 and len(text) == BIG - 200
        with pytest.raises(ResponseTooLarge) as info:
            call(max_body_bytes=MIB)
        assert (info.value.setting, info.value.limit) == ("max_body_bytes", MIB)


@pytest.mark.parametrize("endpoint", ["compact", "models"])
def test_max_decompressed_bytes_bounds_a_unary_body_below_max_body_bytes(endpoint: str
                                                                         ) -> None:
    # With max_body_bytes raised far above it, the decompressed bound is what stops a bomb,
    # while the transport still reads: memory stays near 8 MiB
    # (the transport's own read stops there, not at max_body_bytes).
    with RawServer(bomb_handler("application/json", bomb())) as srv:
        provider = Provider(base_url=srv.base_url, retry=RetryPolicy.never(),
                            max_body_bytes=512 * MIB, max_decompressed_bytes=8 * MIB)
        with (Client(provider, auth=NoAuth(), load_entrypoints=False) as client,
              pytest.raises(ResponseTooLarge) as info):
            if endpoint == "compact":
                client.compact(ResponsesRequest(model="m", input="hi"))
            else:
                client.list_models("1.0")
    assert (info.value.setting, info.value.limit) == ("max_decompressed_bytes", 8 * MIB)


class _NewRequestAuth:
    """An auth flow that sends a new HttpRequest of its own making, not the one it was given."""

    def auth_flow(self, request: HttpRequest) -> Generator[HttpRequest, HttpResponse, None]:
        yield HttpRequest(request.method, request.url, {**request.headers, "X-Signed": "1"},
                          request.body, request.timeout)


def test_a_request_an_auth_flow_builds_keeps_the_providers_bounds() -> None:
    with RawServer(bomb_handler("application/json", bomb())) as srv:
        provider = Provider(base_url=srv.base_url, retry=RetryPolicy.never(),
                            max_body_bytes=512 * MIB, max_decompressed_bytes=8 * MIB)
        with (Client(provider, auth=_NewRequestAuth(), load_entrypoints=False) as client,
              pytest.raises(ResponseTooLarge) as info):
            client.list_models("1.0")
    assert (info.value.setting, info.value.limit) == ("max_decompressed_bytes", 8 * MIB)
    assert srv.requests[0].headers["x-signed"] == "1"
