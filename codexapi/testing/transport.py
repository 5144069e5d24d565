"""Transports for tests: :class:`MockTransport` (httpx's shape: a function from request to
response) and :class:`VcrTransport` (the urllib3 transport, made to read bodies that a stock
vcrpy replay hands over still compressed).

    from codexapi.testing import MockResponse, MockTransport

    def handler(request):
        return MockResponse.sse({"type": "response.completed", "response": {"id": "r1"}})

    client = codexapi.Client(provider, transport=MockTransport(handler))

Everything above the transport (dispatcher, auth, retries, wires, decoders, streams) is the
real code.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..errors import TransportError
from ..http.transport import HttpRequest, HttpResponse
from ..http.urllib3_transport import Urllib3Transport
from ..redact import redact_url

Handler = Callable[[HttpRequest], "MockResponse"]


class MockResponse:
    """A response with a fixed status, headers and body. ``body`` is bytes, or a list of chunks
    handed out one per read (as a network would split them); ``reads`` counts the reads and
    ``closed`` tells whether the client released it. Header lookups are case-insensitive."""

    def __init__(self, status: int = 200, body: bytes | Iterable[bytes] = b"",
                 headers: Mapping[str, str] | None = None, url: str = "") -> None:
        self.status = status
        self.headers: Mapping[str, str] = _Headers(headers or {})
        self.url = url
        self.chunks: list[bytes] = ([body] if body else []) if isinstance(body, bytes) else (
            list(body))
        self.closed = False
        self.reads = 0

    @classmethod
    def json(cls, obj: Any, status: int = 200, headers: Mapping[str, str] | None = None
             ) -> MockResponse:
        """A JSON body (``Content-Type: application/json``)."""
        return cls(status, json.dumps(obj).encode(),
                   {"content-type": "application/json", **(headers or {})})

    @classmethod
    def sse(cls, *events: Any, status: int = 200, headers: Mapping[str, str] | None = None,
            chunks: int | None = None) -> MockResponse:
        """An event stream of ``data:`` messages: each event a JSON-able object or a ready
        string (``"[DONE]"``). ``chunks`` splits the body into that many reads."""
        body = b"".join(b"data: " + (e if isinstance(e, str) else json.dumps(e)).encode()
                        + b"\n\n" for e in events)
        parts = [body] if not chunks else [
            body[i:i + max(1, -(-len(body) // chunks))]
            for i in range(0, len(body), max(1, -(-len(body) // chunks)))]
        return cls(status, parts, {"content-type": "text/event-stream", **(headers or {})})

    def copy(self, url: str = "") -> MockResponse:
        """A fresh, unread copy (a scripted answer may be sent more than once)."""
        return type(self)(self.status, list(self.chunks), self.headers, url or self.url)

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def iter_bytes(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            if self.closed:
                return
            self.reads += 1
            yield chunk

    def read(self) -> bytes:
        self.closed = True
        return self.body

    def drain(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class _Headers(dict[str, str]):
    """A dict whose lookups ignore case, like urllib3's HTTPHeaderDict."""

    def __init__(self, items: Mapping[str, str]) -> None:
        super().__init__((k.lower(), v) for k, v in items.items())

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(key.lower() if isinstance(key, str) else key)


class MockTransport:
    """A Transport that calls ``handler(request)`` for each request and returns its answer
    (a :class:`MockResponse`); the handler may raise a :class:`codexapi.TransportError` to play
    a network failure. ``requests`` records every request sent."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[HttpRequest] = []
        self.closed = False

    def send(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        response = self.handler(request)
        if not response.url:
            response.url = request.url
        return response

    def close(self) -> None:
        self.closed = True


_PIECE = 64 * 1024


class _Inflater:
    """Decodes gzip/deflate bodies that reached us still compressed.

    urllib3 responses arrive decoded (``decode_content=True``). A plain ``http.client``
    response does not decode: that is what vcrpy hands urllib3 on replay. And vcrpy cassettes
    differ: those recorded through urllib3 hold the decoded body yet keep
    ``Content-Encoding: gzip``, those recorded through requests/httpx hold the gzip bytes.
    So the body is sniffed: compressed bytes are inflated, anything else passes through.
    """

    __slots__ = ("_decoder", "_head")

    def __init__(self) -> None:
        self._decoder: Any = None
        #: Bytes kept until the first two are known; None once the body has been sniffed.
        self._head: bytes | None = b""

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        """The inflated bytes of ``chunk``, in pieces of at most 64 KiB: a highly compressed
        chunk is never inflated in one piece (a gzip bomb would fill memory)."""
        if self._head is not None:
            head = self._head + chunk
            if len(head) < 2:
                self._head = head
                return
            self._head = None
            if head[:2] == b"\x1f\x8b":
                self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
            elif head[0] & 0x0F == 8 and int.from_bytes(head[:2], "big") % 31 == 0:
                self._decoder = zlib.decompressobj()
            chunk = head
        decoder = self._decoder
        if decoder is None:
            if chunk:
                yield chunk
            return
        while chunk:
            piece = decoder.decompress(chunk, _PIECE)
            if piece:
                yield bytes(piece)
            chunk = decoder.unconsumed_tail

    def flush(self) -> bytes:
        if self._decoder is not None:
            return bytes(self._decoder.flush())
        tail, self._head = self._head or b"", None
        return tail


class _InflatingResponse:
    """``response`` with its body run through an :class:`_Inflater`."""

    def __init__(self, response: HttpResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = response.headers
        self.url = response.url

    def iter_bytes(self) -> Iterator[bytes]:
        inflate = _Inflater()
        try:
            for chunk in self._response.iter_bytes():
                yield from inflate.feed(chunk)
            tail = inflate.flush()
        except zlib.error as exc:
            self._response.close()
            raise TransportError(
                f"the response from {redact_url(self.url)} claims Content-Encoding "
                f"{self.headers.get('content-encoding')!r} but does not decode: {exc}",
                url=redact_url(self.url)) from exc
        if tail:
            yield tail

    def read(self) -> bytes:
        try:
            return b"".join(self.iter_bytes())
        finally:
            self.close()

    def drain(self) -> None:
        self._response.drain()

    def close(self) -> None:
        self._response.close()


class VcrTransport(Urllib3Transport):
    """:class:`codexapi.Urllib3Transport` for tests that replay with stock vcrpy (outside
    :func:`codexapi.testing.use_cassette`, which normalizes bodies when it loads a cassette):
    a replayed body still compressed under ``Content-Encoding: gzip``/``deflate`` is inflated.
    """

    def send(self, request: HttpRequest, stream: bool = True) -> HttpResponse:
        response = super().send(request)
        encoding = (response.headers.get("content-encoding") or "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            return _InflatingResponse(response)
        return response
