"""Cassette files: written as readable YAML in vcrpy's layout, read in any known format.

Text bodies are YAML block scalars (an SSE stream reads as the server sent it, one line per
line); JSON request bodies are indented; only bytes that are not UTF-8 become ``!!binary``.
The file stays loadable by stock vcrpy.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .formats import _yaml, load_interactions

#: Cassette format version written (vcrpy's).
FORMAT_VERSION = 1


def _dumper() -> Any:
    yaml = _yaml()

    class Dumper(yaml.SafeDumper):  # type: ignore[misc,name-defined]
        pass

    def text(dumper: Any, value: str) -> Any:
        # The emitter falls back to quoting by itself when a block cannot hold the text
        # (trailing spaces, control characters).
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return Dumper


def _text_or_bytes(data: bytes | None) -> str | bytes | None:
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _request_body(body: Any) -> str | bytes | None:
    if body is None or body == b"" or body == "":
        return None
    data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
    try:
        parsed = json.loads(data)
    except ValueError:
        return _text_or_bytes(data)
    # Matching compares JSON as data, so the stored layout is free to be readable.
    return json.dumps(parsed, indent=2, ensure_ascii=False) + "\n"


def _header_lists(headers: Mapping[str, Any]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, values in headers.items():
        vals = values if isinstance(values, list | tuple) else [values]
        out.setdefault(str(name), []).extend(str(v) for v in vals)
    return out


def dump_cassette(requests: Sequence[Any], responses: Sequence[Mapping[str, Any]]) -> str:
    """YAML text for vcrpy requests and response dicts."""
    interactions = []
    for request, response in zip(requests, responses, strict=True):
        body = (response.get("body") or {}).get("string")
        if isinstance(body, str):
            body = body.encode("utf-8")
        interactions.append({
            "request": {
                "method": request.method,
                "uri": request.uri,
                "headers": _header_lists(request.headers),
                "body": _request_body(request.body),
            },
            "response": {
                "status": {"code": int(response["status"]["code"]),
                           "message": str(response["status"].get("message") or "")},
                "headers": _header_lists(response.get("headers") or {}),
                "body": {"string": _text_or_bytes(body) if body is not None else ""},
            },
        })
        if response.get("failure"):
            # Read by our player only; vcrpy ignores keys it does not know.
            interactions[-1]["response"]["failure"] = str(response["failure"])
    doc = {"version": FORMAT_VERSION, "interactions": interactions}
    text: str = _yaml().dump(doc, Dumper=_dumper(), sort_keys=False, allow_unicode=True,
                             width=1 << 20)
    return text


class Persister:
    """vcrpy persister: loads every known cassette format, saves readable YAML, and reports a
    corrupt file by name and line (vcrpy would otherwise treat it as empty and overwrite it)."""

    @classmethod
    def load_cassette(cls, cassette_path: str | Path, serializer: Any = None
                      ) -> tuple[list[Any], list[dict[str, Any]]]:
        # The names vcr.cassette itself uses, so its `except CassetteNotFoundError` matches.
        from vcr.cassette import CassetteNotFoundError
        from vcr.request import Request

        path = Path(cassette_path)
        if not path.is_file() or not path.read_bytes().strip():
            raise CassetteNotFoundError()
        requests, responses = [], []
        for it in load_interactions(path):
            headers: dict[str, list[str]] = {}
            for name, value in it.request_headers:
                headers.setdefault(name, []).append(value)
            request = Request(it.method, it.uri, it.request_body,
                              {k: ", ".join(v) for k, v in headers.items()})
            response_headers: dict[str, list[str]] = {}
            for name, value in it.headers:
                response_headers.setdefault(name, []).append(value)
            requests.append(request)
            response: dict[str, Any] = {"status": {"code": it.status, "message": it.reason},
                                        "headers": response_headers,
                                        "body": {"string": it.body}}
            if it.failure:
                response["failure"] = it.failure
            responses.append(response)
        return requests, responses

    @staticmethod
    def save_cassette(cassette_path: str | Path, cassette_dict: Mapping[str, Any],
                      serializer: Any = None) -> None:
        path = Path(cassette_path)
        text = dump_cassette(cassette_dict["requests"], cassette_dict["responses"])
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole or not at all: an interrupted recording must not leave half a file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            # mkstemp makes the file private; a cassette is a project file like any other.
            os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
