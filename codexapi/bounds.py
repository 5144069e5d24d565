"""Size bounds on what a server may send: the largest unary body and decompressed body.

Every body is read through :func:`iter_body`, whatever the transport, so a bound holds for a
custom transport or a cassette replay as it does for urllib3. Memory stays near the bound: the
transports inflate in pieces (never one whole compressed chunk at once) and these checks stop
reading as soon as a bound is passed.
"""

from __future__ import annotations

from collections.abc import Iterator

from .http.transport import HttpResponse, iter_bounded
from .models import Provider


def iter_body(response: HttpResponse, provider: Provider, body_limit: int | None = None,
              what: str = "response") -> Iterator[bytes]:
    """``response.iter_bytes()``, ended with :class:`ResponseTooLarge` (and the connection
    closed) once the body passes ``body_limit`` or a compressed body passes the provider's
    ``max_decompressed_bytes``."""
    return iter_bounded(response, body_limit, provider.max_decompressed_bytes, what)


def read_body(response: HttpResponse, provider: Provider, what: str) -> bytes:
    """The whole unary body, bounded by ``max_body_bytes`` (and ``max_decompressed_bytes``)."""
    try:
        return b"".join(iter_body(response, provider, provider.max_body_bytes, what))
    finally:
        response.close()
