"""Keeping secrets out of logs, reprs, exceptions and cassettes.

One list of what counts as secret, used everywhere something is shown to a person.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"

#: Header names whose values are credentials or identify an account.
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api-key",
        "x-api-key",
        "chatgpt-account-id",
        "cookie",
        "set-cookie",
        "x-goog-api-key",
    }
)

# A name that merely contains one of these words is treated as secret too (x-gateway-token,
# x-vault-secret...): custom auth plugins pick their own header names.
_SECRET_WORDS = re.compile(r"token|secret|passw|api[-_]?key|signature|credential|session-key",
                           re.IGNORECASE)

#: Query parameter names that carry credentials in URLs (presigned URLs, ?key=, ?token=).
_SECRET_QUERY = re.compile(
    r"^(key|api[-_]?key|token|access[-_]?token|refresh[-_]?token|id[-_]?token|secret|"
    r"password|sig|signature|code|x-amz-signature|x-amz-credential|x-goog-signature|auth)$",
    re.IGNORECASE,
)


def is_secret_header(name: str) -> bool:
    """Whether a header's value must never be shown."""
    lowered = name.lower()
    if lowered.startswith("x-ratelimit-"):
        return False  # counters such as x-ratelimit-remaining-tokens, not credentials
    return lowered in SECRET_HEADERS or bool(_SECRET_WORDS.search(lowered))


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
    """A copy of ``headers`` with every secret value replaced by ``<redacted>``."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return {k: (REDACTED if is_secret_header(k) else v) for k, v in items}


def redact_url(url: str) -> str:
    """``url`` with userinfo passwords and credential-like query values replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{REDACTED}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_query(k) for k, _ in pairs):
            query = urlencode(
                [(k, REDACTED if is_secret_query(k) else v) for k, v in pairs], safe="<>"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def is_secret_query(name: str) -> bool:
    """Whether a URL query parameter's value must never be shown."""
    return bool(_SECRET_QUERY.match(name)) or is_secret_header(name)


def redact_query_params(params: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``params`` (e.g. ``Provider.query_params``) with credential values replaced."""
    return {k: (REDACTED if is_secret_query(k) else v) for k, v in params.items()}


def mask(secret: str | None) -> str:
    """How a secret appears in a repr: its presence, never its value."""
    return "None" if secret is None else REDACTED


def scrub_text(text: str, secrets: Iterable[str]) -> str:
    """Replace each known secret value occurring in ``text`` (e.g. echoed in an error body)."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, REDACTED)
    return text


def secrets_of(headers: Mapping[str, str], url: str = "") -> list[str]:
    """The secret values a request carries: secret headers' values (and the token after an
    auth scheme such as ``Bearer``), and credential-like query values in ``url``."""
    found: list[str] = []
    for name, value in headers.items():
        if is_secret_header(name) and isinstance(value, str):
            found.append(value)
            scheme, _, token = value.partition(" ")
            if token and scheme.isalpha():
                found.append(token.strip())
    if "?" in url:
        try:
            pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True)
        except ValueError:
            pairs = []
        found.extend(v for k, v in pairs if is_secret_query(k))
    # Longest first, so a token is not half-replaced by a shorter secret inside it.
    return sorted({s for s in found if len(s) >= 6}, key=len, reverse=True)


def _scrub_json(value: Any, secrets: Iterable[str]) -> Any:
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, list):
        return [_scrub_json(v, secrets) for v in value]
    if isinstance(value, dict):
        return {scrub_text(k, secrets): _scrub_json(v, secrets) for k, v in value.items()}
    return value


def scrub_body(text: str, secrets: list[str]) -> str:
    """:func:`scrub_text`, also catching secrets a JSON body spells with escapes
    (``"sk-\\u0061bc"``): such a body is re-serialized from its scrubbed parse."""
    if not secrets:
        return text
    text = scrub_text(text, secrets)
    if "\\" in text:
        try:
            data = json.loads(text)
        except ValueError:
            return text
        cleaned = _scrub_json(data, secrets)
        if cleaned != data:
            return json.dumps(cleaned)
    return text


_E = TypeVar("_E", bound=BaseException)


def scrub_error(error: _E, secrets: list[str]) -> _E:
    """Remove ``secrets`` from ``error`` and its whole cause/context chain, in place: message,
    args, body, headers and details. Returns ``error``."""
    if not secrets:
        return error
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        exc = todo.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        with contextlib.suppress(Exception):  # an exception type with read-only fields
            exc.args = tuple(_scrub_json(a, secrets) if isinstance(a, str | list | dict) else a
                             for a in exc.args)
        # Fields of C-level exceptions (UnicodeError.object, OSError.strerror) and anything an
        # exception keeps in its __dict__ (JSONDecodeError.doc, BadStatusLine.line...).
        names = {"reason", "strerror", "object", *getattr(exc, "__dict__", ())}
        for attr in names:
            value = getattr(exc, attr, None)
            if isinstance(value, str | list | dict):
                with contextlib.suppress(Exception):
                    setattr(exc, attr, _scrub_json(value, secrets))
            elif isinstance(value, bytes):
                with contextlib.suppress(Exception):
                    text = value.decode("utf-8", "replace")
                    if any(s in text for s in secrets):
                        setattr(exc, attr, scrub_text(text, secrets).encode())
        todo.extend((exc.__cause__, exc.__context__))
    return error


class RedactUrlsFilter(logging.Filter):
    """Redacts credential-like query values and userinfo in a record's string arguments
    (urllib3 logs each request's target, ``?api-key=…`` included, at DEBUG)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            record.args = tuple(redact_url(a) if isinstance(a, str) and ("?" in a or "@" in a)
                                else a for a in args)
        return True


def install_urllib3_filter() -> None:
    """Put :class:`RedactUrlsFilter` on urllib3's loggers that name request URLs (once)."""
    for name in ("urllib3.connectionpool", "urllib3.poolmanager", "urllib3.util.retry"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactUrlsFilter) for f in logger.filters):
            logger.addFilter(RedactUrlsFilter())
