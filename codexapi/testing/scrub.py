"""What a recording keeps: secrets replaced, loopback addresses fixed, bodies stored decoded.

Runs on record (vcrpy's ``before_record_request``/``before_record_response``) and, for
requests, also on every request being matched, so a replay compares like with like.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..redact import REDACTED, is_secret_header, redact_url
from .formats import inflate

#: Headers that are not credentials but name the account (organization, project, account id):
#: scrubbed from recordings as well, together with everything :func:`is_secret_header` flags.
ACCOUNT_HEADERS = frozenset({"openai-organization", "openai-project", "chatgpt-account-id",
                             "x-openai-organization", "x-openai-project"})

#: Recordings made against any loopback address store this authority instead, so a cassette
#: recorded against a server on a random port replays against any other port.
LOOPBACK_AUTHORITY = "127.0.0.1:8000"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


def is_loopback(host: str | None) -> bool:
    return (host or "").lower() in _LOOPBACK_HOSTS or (host or "").startswith("127.")


def normalize_uri(uri: str) -> str:
    """``uri`` with a loopback host:port replaced by :data:`LOOPBACK_AUTHORITY` and credential
    query values redacted."""
    parts = urlsplit(uri)
    if is_loopback(parts.hostname):
        parts = parts._replace(netloc=LOOPBACK_AUTHORITY)
    return redact_url(urlunsplit(parts))


#: Header prefixes that name token *counts*, not tokens: rate-limit state a replay must keep
#: (``x-ratelimit-remaining-tokens`` would otherwise look like a secret by its name).
_COUNTER_PREFIXES = ("x-ratelimit-", "x-codex-")


def scrubbed(name: str, extra: frozenset[str]) -> bool:
    lowered = name.lower()
    if lowered in extra or lowered in ACCOUNT_HEADERS:
        return True
    return is_secret_header(lowered) and not lowered.startswith(_COUNTER_PREFIXES)


def scrub_request_headers(headers: Mapping[str, Any], extra: frozenset[str]) -> dict[str, Any]:
    return {k: (REDACTED if scrubbed(k, extra) else v) for k, v in headers.items()}


class Scrubber:
    """The record hooks of one cassette. Secret header values seen on requests are also
    remembered and replaced wherever they reappear in a body (a key echoed in an error)."""

    def __init__(self, extra_headers: Iterable[str] = ()) -> None:
        self.extra = frozenset(h.lower() for h in extra_headers)
        self.secrets: set[bytes] = set()

    def _remember(self, value: Any) -> None:
        for text in value if isinstance(value, list | tuple) else [value]:
            text = str(text)
            # "Bearer sk-..." / "Basic ...": the credential alone is what could be echoed.
            for candidate in (text, text.split(" ", 1)[-1]):
                if len(candidate) >= 8 and candidate != REDACTED:
                    self.secrets.add(candidate.encode("utf-8"))

    def _scrub(self, data: bytes) -> bytes:
        for secret in self.secrets:
            if secret in data:
                data = data.replace(secret, REDACTED.encode())
        return data

    def request(self, request: Any) -> Any:
        """``before_record_request``: a scrubbed, loopback-normalized *copy* (vcrpy still
        sends the original request when recording, so it must not be changed in place)."""
        headers = dict(request.headers)
        for name, value in headers.items():
            if scrubbed(name, self.extra):
                self._remember(value)
        clean = copy.copy(request)
        clean.uri = normalize_uri(request.uri)
        clean.headers = scrub_request_headers(headers, self.extra)
        if isinstance(request.body, bytes) and self.secrets:
            clean.body = self._scrub(request.body)
        return clean

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        """``before_record_response``: account headers and cookies scrubbed, the body stored
        decoded (readable) with headers that describe it truthfully, known secrets removed."""
        headers: dict[str, list[str]] = {}
        for name, values in (response.get("headers") or {}).items():
            vals = values if isinstance(values, list) else [values]
            headers[name] = ([REDACTED] * len(vals) if scrubbed(name, self.extra)
                             else list(vals))
        body = response.get("body") or {}
        data = body.get("string")
        if isinstance(data, str):
            data = data.encode("utf-8")
        if isinstance(data, bytes):
            # urllib3 hands vcrpy the decoded body but the header still says gzip; requests or
            # httpx hand it the gzip bytes. Either way what is stored is the plain body.
            data = self._scrub(inflate(data))
            for name in list(headers):
                low = name.lower()
                if low in ("content-encoding", "transfer-encoding"):
                    del headers[name]
                elif low == "content-length":
                    headers[name] = [str(len(data))]
            response = {**response, "body": {**body, "string": data}}
        response["headers"] = headers
        return response
