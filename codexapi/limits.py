"""Size bounds on what a server may send: the largest unary body and decompressed body.

Every body is read through :func:`iter_body`, whatever the transport, so a bound holds for a
custom transport or a cassette replay as it does for urllib3. Memory stays near the bound: the
transports inflate in pieces (never one whole compressed chunk at once) and these checks stop
reading as soon as a bound is passed.
"""

from __future__ import annotations

from collections.abc import Iterator

from .errors import ResponseTooLarge
from .models import Provider
from .redact import redact_url
from .transport import HttpResponse


def _compressed(response: HttpResponse) -> bool:
    encoding = (response.headers.get("content-encoding") or "").strip().lower()
    return encoding not in ("", "identity")


def iter_body(response: HttpResponse, provider: Provider, body_limit: int | None = None,
              what: str = "response") -> Iterator[bytes]:
    """``response.iter_bytes()``, ended with :class:`ResponseTooLarge` (and the connection
    closed) once the body passes ``body_limit`` or a compressed body passes the provider's
    ``max_decompressed_bytes``."""
    inflated_limit = provider.max_decompressed_bytes if _compressed(response) else None
    limit, setting = body_limit, "max_body_bytes"
    if inflated_limit is not None and (limit is None or inflated_limit < limit):
        limit, setting = inflated_limit, "max_decompressed_bytes"
    if limit is None:
        yield from response.iter_bytes()
        return
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            response.close()
            kind = "decompressed " if setting == "max_decompressed_bytes" else ""
            raise ResponseTooLarge(
                f"the {what} body from {redact_url(response.url)} passed its bound of {limit} "
                f"{kind}bytes; raise Provider.{setting} if such a body is expected",
                setting=setting, limit=limit)
        yield chunk


def read_body(response: HttpResponse, provider: Provider, what: str) -> bytes:
    """The whole unary body, bounded by ``max_body_bytes`` (and ``max_decompressed_bytes``)."""
    try:
        return b"".join(iter_body(response, provider, provider.max_body_bytes, what))
    finally:
        response.close()
