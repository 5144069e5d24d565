"""Base URLs: what a provider's ``base_url`` may be, and how an endpoint URL is built from it.

A base URL is checked once, when the :class:`~codexapi.Provider` is made: a value that can
never work (no scheme, another scheme, no host, stray whitespace, a bad port) is a
:class:`ConfigError` then, never a request that fails and is retried. Credentials in the URL
(``https://user:pw@host/v1``) are refused rather than used: they would otherwise be dropped
silently (urllib3 does not turn userinfo into an ``Authorization`` header) and the URL would
carry a secret into every log line that names it. The message never quotes them.

Joining follows codex-api ``url_for_path`` (base without trailing ``/``, path without leading
``/``, ``query_params`` appended as ``k=v``), with three repairs the crate lacks: names and
values are percent-encoded (the crate appends them verbatim, so a value holding ``&``, ``#``,
``=``, ``%``, a space or non-ASCII reached the server as another parameter, or none); a query
already in the base URL stays after the path (``…/v1?api-version=x`` gives
``…/v1/responses?api-version=x``); and a fragment, which HTTP never sends, is dropped instead
of swallowing the path. A value of letters, digits and ``-._~:/@!$'()*,`` is sent as is, so
the usual ones (``api-version=2025-04-01-preview``) read as the crate sends them.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, urlsplit

from ..errors import ConfigError

SCHEMES = ("http", "https")
#: Characters a query name or value keeps unencoded: RFC 3986's unreserved ones and the
#: sub-delimiters no server reads as a separator (``&``, ``=``, ``+``, ``;`` and ``#`` are
#: encoded, and ``%`` itself).
_QUERY_SAFE = ":/@!$'()*,"
_EXAMPLE = "e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1"


def _shown(url: str) -> str:
    # A URL with userinfo is never quoted (the password would be in the message).
    text = url if "@" not in url else "<a URL with user:password@>"
    return repr(text if len(text) <= 200 else text[:200] + "…")


def check_base_url(url: object, what: str = "base_url") -> str:
    """Return ``url`` if it can be a base URL; otherwise raise a one-line :class:`ConfigError`
    that says what is wrong and names ``what`` (where the value came from)."""
    if not isinstance(url, str):
        raise ConfigError(f"{what} must be a string URL ({_EXAMPLE}), got "
                          f"{type(url).__name__}")
    if not url.strip():
        raise ConfigError(f"{what} is empty: give a URL ({_EXAMPLE})")
    if url != url.strip():
        raise ConfigError(f"{what} {_shown(url)} has leading or trailing whitespace; remove it")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise ConfigError(f"{what} {_shown(url)} contains whitespace or control characters")
    if "://" not in url:
        # urlsplit reads "localhost:8000/v1" as scheme "localhost": say what is missing.
        raise ConfigError(f"{what} {_shown(url)} has no scheme: it must start with http:// "
                          f"or https:// ({_EXAMPLE})")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{what} {_shown(url)} is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise ConfigError(f"{what} {_shown(url)} has the unsupported scheme "
                          f"{parts.scheme!r}: use http:// or https://")
    if "@" in parts.netloc:
        raise ConfigError(
            f"{what} contains credentials (user:password@{parts.hostname or ''}); they are not "
            "sent from a URL: remove them and pass the key as auth= (e.g. codexapi.BearerAuth) "
            "or in the provider's env_key variable")
    if not parts.hostname:
        raise ConfigError(f"{what} {_shown(url)} has no host ({_EXAMPLE})")
    if port == 0:
        raise ConfigError(f"{what} {_shown(url)} has port 0, which cannot be connected to")
    return url


def join(base_url: str, path: str, query_params: Mapping[str, str] | None = None) -> str:
    """The URL of ``path`` under ``base_url``, with ``query_params`` appended."""
    base, _, _fragment = base_url.partition("#")
    base, sep, query = base.partition("?")
    base = base.rstrip("/")
    path = path.lstrip("/")
    url = f"{base}/{path}" if path else base
    queries = [query] if sep and query else []
    if query_params:
        queries.append("&".join(f"{quote(k, safe=_QUERY_SAFE)}={quote(v, safe=_QUERY_SAFE)}"
                                for k, v in query_params.items()))
    return url + ("?" + "&".join(queries) if queries else "")


__all__ = ["SCHEMES", "check_base_url", "join"]
