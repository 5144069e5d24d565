"""Reading cassettes in the formats found in the wild, into one :class:`Interaction` shape.

Three layouts are understood (see docs/testing.md):

- vcrpy (``interactions:``; ``request.body`` a string, ``response.body.string`` text or
  ``!!binary`` bytes, possibly gzip with ``Content-Encoding: gzip`` kept) — also our own files;
- pydantic-ai's variant of it, with JSON bodies as YAML mappings under ``parsed_body``;
- Ruby VCR (``http_interactions:``; bodies ``{encoding, string}``, lower-case methods, and
  Ruby's local ``!binary`` tag for base64 text).

Needs PyYAML (``pip install 'codexapi[cassettes]'``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import attrs

from ..http.compression import (
    DECODABLE_ENCODINGS,
    DecodedTooLarge,
    UndecodableBody,
    decompress,
)
from ..models import Provider
from .errors import CassetteError, CorruptCassetteError

#: Response headers that describe the stored bytes rather than the exchange; recomputed when a
#: body is re-serialized (pydantic-ai's parsed_body) or served again.
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection",
                             "keep-alive"})


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:  # pragma: no cover - yaml ships with the test extra
        raise CassetteError("reading cassettes needs PyYAML: pip install 'codexapi[cassettes]'"
                            ) from None
    return yaml


@attrs.frozen
class Interaction:
    """One recorded request and its response, bodies as bytes (the response as it was on the
    wire: ``body`` may be gzip when ``Content-Encoding`` says so)."""

    method: str
    uri: str
    request_headers: tuple[tuple[str, str], ...]
    request_body: bytes | None
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    index: int = 0
    #: How the exchange broke, as recorded by ``codexapi serve --record``: ``"drop"`` (the
    #: connection closed after ``body``, before the response ended) or ``"reset"`` (no
    #: answer at all); empty for an exchange that ended normally.
    failure: str = ""

    @property
    def is_websocket(self) -> bool:
        """A WebSocket turn: ``uri`` is ws:// or wss://, ``request_body`` the
        ``response.create`` frame, ``body`` the server's frames as SSE ``data:`` messages."""
        return self.uri.startswith(("ws://", "wss://"))

    def header(self, name: str) -> str | None:
        """A response header, case-insensitively (the first if repeated)."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)

    @property
    def content_type(self) -> str:
        return (self.header("content-type") or "").split(";")[0].strip().lower()

    @property
    def is_sse(self) -> bool:
        return self.content_type == "text/event-stream"

    @property
    def decoded_body(self) -> bytes:
        """The response body with any gzip, deflate or zstd undone (vcrpy keeps the header
        even when it stored the decoded body, so the bytes decide)."""
        return inflate(self.body, self.header("content-encoding") or "")

    def request_json(self) -> Any:
        """The request body parsed as JSON, or None when it is empty or not JSON."""
        if not self.request_body:
            return None
        try:
            return json.loads(self.request_body)
        except ValueError:
            return None

    def events(self) -> list[Any]:
        """The JSON payloads of an SSE response body, in order (``[DONE]`` and data that is
        not JSON are left out)."""
        from ..sse import iter_messages

        out = []
        for message in iter_messages([self.decoded_body]):
            try:
                out.append(json.loads(message.data))
            except ValueError:
                continue
        return out

    def response_json(self) -> Any:
        """The response body parsed as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.decoded_body)
        except ValueError:
            return None


#: The most bytes a stored body is decoded to (a cassette is read or written under the same
#: bound as a live body: ``Provider.max_decompressed_bytes``'s default).
MAX_DECODED_BODY = cast(int, attrs.fields(Provider).max_decompressed_bytes.default)

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def inflate(data: bytes, encoding: str = "", limit: int = MAX_DECODED_BODY) -> bytes:
    """``data`` decompressed if it is gzip, zlib or zstd, else unchanged. ``encoding`` (the
    ``Content-Encoding`` it came with) is tried first; the bytes decide in the end, since
    vcrpy may keep the header of a body it stored decoded. :class:`CassetteError` when it
    decodes to more than ``limit`` bytes."""
    tried = [e for e in (p.strip().lower() for p in encoding.split(","))
             if e in DECODABLE_ENCODINGS]
    if data[:2] == b"\x1f\x8b":
        tried.append("gzip")
    elif data[:4] == _ZSTD_MAGIC:
        tried.append("zstd")
    elif len(data) > 1 and data[0] & 0x0F == 8 and int.from_bytes(data[:2], "big") % 31 == 0:
        tried.append("deflate")
    for name in dict.fromkeys(tried):
        try:
            return decompress(data, name, limit)
        except DecodedTooLarge as exc:
            raise CassetteError(f"a recorded body is too large to keep: {exc} (the bound of "
                                "max_decompressed_bytes)") from None
        except UndecodableBody:
            continue
    return data


def yaml_loader() -> Any:
    """A SafeLoader that also reads Ruby VCR's local ``!binary`` tag (base64 text)."""
    yaml = _yaml()

    class Loader(yaml.SafeLoader):  # type: ignore[misc,name-defined]
        pass

    def ruby_binary(loader: Any, node: Any) -> bytes:
        return base64.b64decode(loader.construct_scalar(node))

    Loader.add_constructor("!binary", ruby_binary)
    return Loader


def parse_yaml(text: str, path: str) -> Any:
    """Parse YAML, turning a syntax error into a CorruptCassetteError with file and line."""
    yaml = _yaml()
    try:
        return yaml.load(text, Loader=yaml_loader())  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        if mark is None:
            raise CorruptCassetteError(problem or str(exc), path) from None
        raise CorruptCassetteError(problem or "invalid YAML", path, mark.line + 1,
                                   mark.column + 1) from None
    except yaml.YAMLError as exc:
        raise CorruptCassetteError(str(exc), path) from None


def read_text(path: str | Path) -> str:
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CorruptCassetteError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                                   str(p)) from None
    except OSError as exc:
        raise CassetteError(f"cannot read cassette {p}: {exc.strerror or exc}") from None


def load_interactions(path: str | Path) -> list[Interaction]:
    """Every interaction of the cassette at ``path``, whatever its format."""
    text = read_text(path)
    return parse_interactions(parse_yaml(text, str(path)), str(path))


def parse_interactions(data: Any, path: str) -> list[Interaction]:
    """Interactions from an already parsed cassette document."""
    if not isinstance(data, Mapping):
        raise CorruptCassetteError("expected a mapping with `interactions` (vcrpy) or "
                                   "`http_interactions` (Ruby VCR) at the top", path)
    raw = data.get("interactions", data.get("http_interactions"))
    if not isinstance(raw, list):
        raise CorruptCassetteError("no `interactions` list (vcrpy) or `http_interactions` list "
                                   "(Ruby VCR)", path)
    out = []
    for index, entry in enumerate(raw):
        try:
            out.append(_interaction(entry, index))
        except (KeyError, TypeError, ValueError) as exc:
            detail = f"missing `{exc.args[0]}`" if isinstance(exc, KeyError) else str(exc)
            raise CorruptCassetteError(f"interaction #{index + 1}: {detail}", path) from None
    return out


def _headers(raw: Any) -> tuple[tuple[str, str], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise TypeError("headers are not a mapping")
    pairs: list[tuple[str, str]] = []
    for name, values in raw.items():
        seq: Iterable[Any] = values if isinstance(values, list | tuple) else [values]
        pairs.extend((str(name), str(v)) for v in seq)
    return tuple(pairs)


def _bytes(value: Any) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"a body is a {type(value).__name__}, expected text or bytes")


def _body(part: Mapping[str, Any]) -> bytes | None:
    if "parsed_body" in part:
        # pydantic-ai stores JSON bodies as YAML mappings; the original bytes are gone.
        return json.dumps(part["parsed_body"]).encode()
    body = part.get("body")
    if isinstance(body, Mapping):
        return _bytes(body.get("string"))
    return _bytes(body)


def _interaction(entry: Any, index: int) -> Interaction:
    request, response = entry["request"], entry["response"]
    status = response["status"]
    code = status["code"] if isinstance(status, Mapping) else status
    reason = status.get("message", "") if isinstance(status, Mapping) else ""
    headers = _headers(response.get("headers"))
    if "parsed_body" in response:
        headers = tuple((k, v) for k, v in headers
                        if k.lower() not in FRAMING_HEADERS and k.lower() != "content-encoding")
    return Interaction(
        method=str(request["method"]).upper(),
        uri=str(request["uri"]),
        request_headers=_headers(request.get("headers")),
        request_body=_body(request),
        status=int(code),
        reason=str(reason or ""),
        headers=headers,
        body=_body(response) or b"",
        index=index,
        failure=str(response.get("failure") or ""),
    )
