"""A request body as the server reads it: where it ends (RFC 9112 §6.3), read under the body
bound whether it comes with ``Content-Length`` or chunked, and its JSON parsed under a nesting
bound.

A request whose framing is ambiguous (``Content-Length`` beside ``Transfer-Encoding``, two
different lengths, a length that is not a number) could be read one way here and another way
by a proxy in front of the server: the bytes one of them takes for a body, the other takes for
a second request (request smuggling). RFC 9112 §6.3 says such a message is an unrecoverable
error: it is answered 400 and the connection closed, so nothing after it is read as a request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Protocol

#: The deepest JSON nesting a request body may have (400 beyond it). The Codex CLI's
#: deepest requests (tool schemas inside tools inside the body) nest about 12 levels.
MAX_JSON_DEPTH = 128
#: The longest chunk-size or trailer line of a chunked body, in bytes.
MAX_CHUNK_LINE = 4096
#: The most trailer fields after a chunked body's last chunk.
MAX_TRAILERS = 64

_DIGITS = re.compile(r"[0-9]+")
#: RFC 9110 §5.1: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\r\n\x00]")
_HEX = re.compile(rb"[0-9A-Fa-f]+")


class Reader(Protocol):
    """What a body is read from (a connection's buffered reader)."""

    def read(self, size: int, /) -> bytes: ...

    def readline(self, size: int, /) -> bytes: ...


class RequestError(Exception):
    """A request refused before it is routed: ``status`` and a message for the client;
    ``close`` when the connection cannot carry another request (its framing is broken)."""

    def __init__(self, status: int, message: str, code: str = "invalid_body",
                 close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.close = close


def _framing_error(message: str, status: int = 400) -> RequestError:
    return RequestError(status, message, "invalid_framing", close=True)


def check_fields(fields: Iterable[tuple[str, str]], defects: Iterable[object]) -> None:
    """A RequestError (400, closing) for a header section that does not parse cleanly: a line
    that is not a field (the parser stops there, so the fields after it would be unseen here
    and honoured by a proxy in front), a name that is not a token (RFC 9112 §5.1: whitespace
    before the colon), a folded line or a CR, LF or NUL in a value (RFC 9112 §5.2, RFC 9110
    §5.5)."""
    if any(True for _ in defects):
        raise _framing_error("a header line does not parse as `Name: value`")
    for name, value in fields:
        if not _TOKEN.fullmatch(name):
            raise _framing_error(f"invalid header name {name[:40]!r}")
        if _BAD_VALUE.search(value):
            raise _framing_error(f"the value of header {name!r} is folded over lines or "
                                 "holds CR, LF or NUL")


def body_length(transfer_encoding: Iterable[str], content_length: Iterable[str],
                version: str, limit: int) -> int | None:
    """The body's length in bytes (0: no body), or None for a chunked body, from the values
    of a request's ``Transfer-Encoding`` and ``Content-Length`` fields; a RequestError when
    the framing is ambiguous or the declared length is over ``limit``."""
    codings = [c.strip().lower() for value in transfer_encoding for c in value.split(",")]
    lengths = {v.strip() for value in content_length for v in value.split(",")}
    if codings:
        if lengths:
            raise _framing_error("a request must not have both Transfer-Encoding and "
                                 "Content-Length (RFC 9112 §6.3): send one of them")
        if version == "HTTP/1.0":
            raise _framing_error("Transfer-Encoding is not allowed in an HTTP/1.0 request")
        if codings[-1] != "chunked":
            raise _framing_error("the last transfer coding of a request must be chunked "
                                 f"(got Transfer-Encoding: {', '.join(codings)})")
        if codings != ["chunked"]:
            raise _framing_error(f"unsupported Transfer-Encoding {', '.join(codings)!r}: the "
                                 "server accepts chunked only", 501)
        return None
    if not lengths:
        return 0
    if len(lengths) > 1:
        raise _framing_error("conflicting Content-Length values "
                             f"({', '.join(sorted(lengths))}) (RFC 9112 §6.3)")
    [text] = lengths
    if not _DIGITS.fullmatch(text):
        raise _framing_error(f"Content-Length must be a number of bytes, got {text!r}")
    length = int(text)
    if length > limit:
        raise RequestError(413, f"request body must be 0..{limit} bytes (Content-Length)",
                           close=True)
    return length


def read_body(rfile: Reader, length: int | None, limit: int) -> bytes:
    """The body of a request framed as :func:`body_length` said: ``length`` bytes, or the
    chunks of a chunked body (at most ``limit`` bytes of data)."""
    if length is None:
        return _read_chunked(rfile, limit)
    data = rfile.read(length) if length else b""
    if len(data) < length:
        raise _framing_error(f"the body ended after {len(data)} of its {length} bytes")
    return data


def _line(rfile: Reader, what: str) -> bytes:
    line = rfile.readline(MAX_CHUNK_LINE + 1)
    if not line.endswith(b"\n"):
        raise _framing_error(f"a chunked body's {what} line is cut off or longer than "
                             f"{MAX_CHUNK_LINE} bytes")
    return line


def _read_chunked(rfile: Reader, limit: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while True:
        size_text = _line(rfile, "chunk size").split(b";", 1)[0].strip()
        if not _HEX.fullmatch(size_text):
            raise _framing_error(f"bad chunk size {size_text[:40]!r} in a chunked body")
        size = int(size_text, 16)
        if total + size > limit:
            raise RequestError(413, f"the chunked request body is over {limit} bytes",
                               close=True)
        if size == 0:
            break
        data = rfile.read(size)
        if len(data) < size or rfile.read(2) != b"\r\n":
            raise _framing_error("a chunk of the chunked body is cut off or not followed "
                                 "by CRLF")
        parts.append(data)
        total += size
    for _ in range(MAX_TRAILERS + 1):
        if _line(rfile, "trailer").strip() == b"":
            return b"".join(parts)
    raise _framing_error(f"a chunked body has more than {MAX_TRAILERS} trailer fields")


def too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed JSON) nests more than ``limit`` arrays and objects deep."""
    level = [value]
    depth = 0
    while level:  # one nesting level at a time: a comprehension per level is cheap
        depth += 1
        if depth > limit:
            return True
        level = [child for node in level
                 for child in (node.values() if isinstance(node, dict) else node)
                 if isinstance(child, dict | list)]
    return False


def parse_json(raw: bytes | str, what: str = "request body",
               limit: int = MAX_JSON_DEPTH) -> Any:
    """``raw`` parsed as JSON; a RequestError (400) when it is not JSON or nests deeper than
    ``limit`` (checked here because the rest of the server walks bodies recursively)."""
    deep = RequestError(400, f"{what} nests JSON more than {limit} levels deep (the "
                        "server's bound)", "json_too_deep")
    try:
        value = json.loads(raw)
    except RecursionError:
        # The parser itself ran out of stack: far deeper than the bound.
        raise deep from None
    except ValueError:
        raise RequestError(400, f"{what} is not valid JSON", "invalid_json") from None
    if isinstance(value, dict | list) and too_deep(value, limit):
        raise deep
    return value
