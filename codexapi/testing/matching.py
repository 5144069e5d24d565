"""Request matching for replays: loopback ports ignored, JSON bodies compared as data.

Matchers follow vcrpy's protocol: ``matcher(live, recorded)`` raises AssertionError saying
what differs (vcrpy shows that message when nothing matches).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..redact import redact_url
from .scrub import is_loopback

Matcher = Callable[[Any, Any], None]


def _check(ok: bool, message: str) -> None:
    # Not `assert`: matchers must hold under `python -O`, and pytest rewrites asserts in
    # plugin modules, which would add its own explanation to the message.
    if not ok:
        raise AssertionError(message)


def method(live: Any, recorded: Any) -> None:
    _check(live.method.upper() == recorded.method.upper(),
           f"method {live.method} != {recorded.method}")


def uri(live: Any, recorded: Any) -> None:
    """Scheme, host, path and query (as an unordered multiset); the port of a loopback host
    is ignored (servers under test listen on random ports)."""
    a, b = urlsplit(live.uri), urlsplit(recorded.uri)
    _check(a.scheme == b.scheme, f"scheme {a.scheme} != {b.scheme}")
    path(live, recorded)
    qa = sorted(parse_qsl(a.query, keep_blank_values=True))
    qb = sorted(parse_qsl(b.query, keep_blank_values=True))
    _check(qa == qb, f"query {a.query!r} != {b.query!r}")


def path(live: Any, recorded: Any) -> None:
    """Like :func:`uri` without the query (for recordings whose clients sent other query
    parameters, e.g. ``client_version``)."""
    a, b = urlsplit(live.uri), urlsplit(recorded.uri)
    _check(a.scheme == b.scheme, f"scheme {a.scheme} != {b.scheme}")
    if not (is_loopback(a.hostname) and is_loopback(b.hostname)):
        _check((a.hostname, a.port) == (b.hostname, b.port), f"host {a.netloc} != {b.netloc}")
    _check(a.path.rstrip("/") == b.path.rstrip("/"), f"path {a.path} != {b.path}")


def _as_bytes(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if hasattr(body, "getvalue"):
        return bytes(body.getvalue())
    if isinstance(body, list):
        return b"".join(_as_bytes(part) for part in body)
    return bytes(body)


def parse_json(body: Any) -> tuple[bool, Any]:
    data = _as_bytes(body)
    if not data.strip():
        return True, None
    try:
        return True, json.loads(data)
    except ValueError:
        return False, data


def drop_fields(value: Any, fields: Iterable[str]) -> Any:
    """``value`` without the named fields: a bare name is removed at any depth, a dotted
    path (``reasoning.effort``) only there."""
    out = value
    for field in fields:
        out = _drop(out, field.split("."), anywhere="." not in field)
    return out


def _drop(value: Any, path: list[str], anywhere: bool) -> Any:
    if isinstance(value, list):
        return [_drop(v, path, anywhere) for v in value] if anywhere else value
    if not isinstance(value, dict):
        return value
    head, rest = path[0], path[1:]
    out = {}
    for key, item in value.items():
        if key == head and not rest:
            continue
        if key == head:
            out[key] = _drop(item, rest, False)
        elif anywhere:
            out[key] = _drop(item, path, True)
        else:
            out[key] = item
    return out


def json_body(ignore_fields: Iterable[str] = ()) -> Matcher:
    """Bodies equal as JSON (key order and whitespace ignored, ``ignore_fields`` dropped);
    non-JSON bodies must be byte-equal."""
    fields = tuple(ignore_fields)

    def body(live: Any, recorded: Any) -> None:
        ok_a, a = parse_json(live.body)
        ok_b, b = parse_json(recorded.body)
        if ok_a and ok_b:
            a, b = drop_fields(a, fields), drop_fields(b, fields)
            _check(a == b, f"JSON bodies differ: {first_difference(a, b)}")
            return
        _check(_as_bytes(live.body) == _as_bytes(recorded.body), "bodies differ (not JSON)")

    return body


def first_difference(a: Any, b: Any, where: str = "$") -> str:
    """Where two JSON values first differ, e.g. ``$.input[1].content: 'hi' != 'ho'``."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key not in b:
                return f"{where}.{key} only in the live request"
            if key not in a:
                return f"{where}.{key} only in the recording"
            if a[key] != b[key]:
                return first_difference(a[key], b[key], f"{where}.{key}")
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{where}: {len(a)} items != {len(b)} recorded"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{where}[{i}]")
    return f"{where}: {_short(a)} != {_short(b)} recorded"


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def summarize_body(body: Any, limit: int = 300) -> str:
    """A one-line description of a request body for error messages: top-level JSON fields
    with long strings cut and nested lists and objects counted."""
    ok, data = parse_json(body)
    if ok and data is None:
        return "(empty)"
    if not ok:
        raw = _as_bytes(body)
        text = f"{len(raw)} bytes: " + raw[:limit].decode("utf-8", "replace")
    elif isinstance(data, dict):
        text = "{" + ", ".join(f"{json.dumps(k)}: {_brief(v)}" for k, v in data.items()) + "}"
    else:
        text = _brief(data)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _brief(value: Any) -> str:
    if isinstance(value, list):
        return "[]" if not value else f"[{len(value)} item{'s' if len(value) > 1 else ''}]"
    if isinstance(value, dict):
        return "{}" if not value else "{" + ", ".join(value)[:40] + "}"
    return _short(value, 40)


def describe(request: Any) -> str:
    return f"{request.method} {redact_url(request.uri)} {summarize_body(request.body)}"
