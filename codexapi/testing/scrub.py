"""What a recording keeps: secrets replaced, loopback addresses fixed, bodies stored decoded.

Runs on record (vcrpy's ``before_record_request``/``before_record_response``) and, for
requests, also on every request being matched, so a replay compares like with like.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..http.compression import DECODABLE_ENCODINGS, DecodedTooLarge, UndecodableBody, decompress
from ..redact import REDACTED, is_secret_header, redact_url, scrub, scrub_bytes, secrets_of
from .errors import CassetteError
from .formats import MAX_DECODED_BODY, inflate

#: Headers that are not credentials but name the account (organization, project, account id):
#: scrubbed from recordings as well, together with everything :func:`is_secret_header` flags.
ACCOUNT_HEADERS = frozenset({"openai-organization", "openai-project", "chatgpt-account-id",
                             "x-openai-organization", "x-openai-project"})

#: Recordings made against any loopback address store this authority instead, so a cassette
#: recorded against a server on a random port replays against any other port.
LOOPBACK_AUTHORITY = "127.0.0.1:8000"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})

#: Stands in a stored request for the ``Content-Encoding`` its body was sent with: the body is
#: stored decoded (so it can be scrubbed and read), and this says how it went on the wire.
DECODED_ENCODING_HEADER = "X-Codexapi-Decoded-Content-Encoding"


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


class Scrubber:
    """The record hooks of one cassette, by :mod:`codexapi.redact`'s one rule. The values of
    secret headers, of secret query parameters and of a JSON request body's secret-named
    fields are remembered (with every secret a live Client sent) and replaced wherever they
    reappear — request and response, headers and bodies, raw, ``\\u``-escaped or
    percent-encoded (a key echoed in an error, a header or a URL)."""

    def __init__(self, extra_headers: Iterable[str] = ()) -> None:
        self.extra = frozenset(h.lower() for h in extra_headers)
        self.secrets: set[str] = set()

    def _scrub(self, data: bytes) -> bytes:
        return scrub_bytes(data, self.secrets)

    def _scrub_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return scrub(value, self.secrets)
        if isinstance(value, list | tuple):
            return [self._scrub_value(v) for v in value]
        return value

    def request(self, request: Any) -> Any:
        """``before_record_request``: a scrubbed, loopback-normalized *copy* (vcrpy still
        sends the original request when recording, so it must not be changed in place). A
        compressed body is stored decoded; its encoding moves to
        :data:`DECODED_ENCODING_HEADER`. Live requests pass through here too before they are
        matched, so a replay compares decoded with decoded."""
        headers = dict(request.headers)
        body = request.body
        encoding = next((k for k in headers if k.lower() == "content-encoding"), None)
        if encoding is not None and isinstance(body, bytes | str):
            decoded = _decoded_request(body, str(headers[encoding]))
            if decoded is not None:
                headers[DECODED_ENCODING_HEADER] = headers.pop(encoding)
                body = decoded
        named = {k: v for k, v in headers.items() if scrubbed(k, self.extra)}
        self.secrets.update(secrets_of(
            {k: v for k, v in named.items() if v != REDACTED}, request.uri,
            self.extra | ACCOUNT_HEADERS, body if isinstance(body, bytes | str) else None))
        for value in named.values():
            # A name only codexapi.testing calls secret (an account header, scrub_headers).
            self.secrets.update(v for v in (value if isinstance(value, list) else [value])
                                if isinstance(v, str) and v != REDACTED and len(v) >= 6)
        clean = copy.copy(request)
        clean.uri = scrub(normalize_uri(request.uri), self.secrets)
        clean.headers = {k: (REDACTED if k in named else self._scrub_value(v))
                         for k, v in headers.items()}
        if isinstance(body, bytes):
            clean.body = self._scrub(body)
        elif isinstance(body, str):
            clean.body = scrub(body, self.secrets)
        return clean

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        """``before_record_response``: secret headers and cookies redacted, the body stored
        decoded (readable) with headers that describe it truthfully, known secrets removed
        from every header value and from the body."""
        headers: dict[str, list[str]] = {}
        for name, values in (response.get("headers") or {}).items():
            vals = values if isinstance(values, list) else [values]
            headers[name] = ([REDACTED] * len(vals) if scrubbed(name, self.extra)
                             else self._scrub_value(list(vals)))
        body = response.get("body") or {}
        data = body.get("string")
        if isinstance(data, str):
            data = data.encode("utf-8")
        if isinstance(data, bytes):
            # urllib3 hands vcrpy the decoded body but the header still says gzip; requests or
            # httpx hand it the gzip bytes. Either way what is stored is the plain body.
            encoding = ",".join(v for k, vals in headers.items()
                                if k.lower() == "content-encoding" for v in vals)
            data = self._scrub(inflate(data, encoding))
            for name in list(headers):
                low = name.lower()
                if low in ("content-encoding", "transfer-encoding"):
                    del headers[name]
                elif low == "content-length":
                    headers[name] = [str(len(data))]
            response = {**response, "body": {**body, "string": data}}
        status = response.get("status")
        if isinstance(status, dict) and isinstance(status.get("message"), str):
            # The reason phrase is the server's to choose: it may echo the key too.
            response = {**response, "status": {**status,
                                               "message": scrub(status["message"],
                                                                self.secrets)}}
        response["headers"] = headers
        return response


def _decoded_request(body: bytes | str, encoding: str) -> bytes | None:
    """A request body sent with ``Content-Encoding: encoding``, decoded under the bound every
    body has; None when it is not one of :data:`DECODABLE_ENCODINGS` or does not decode (it is
    then stored as sent, scrubbed of what can be seen in it)."""
    names = [e.strip().lower() for e in encoding.split(",") if e.strip()]
    if not names or any(n not in DECODABLE_ENCODINGS for n in names):
        return None
    data = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
    try:
        # Encodings are listed in the order they were applied: undone last first.
        for name in reversed(names):
            data = decompress(data, name, MAX_DECODED_BODY)
    except DecodedTooLarge as exc:
        # Not stored rather than stored unscrubbed.
        raise CassetteError(f"a request body is too large to record: {exc} (the bound of "
                            "max_decompressed_bytes)") from None
    except UndecodableBody:
        return None
    return data
