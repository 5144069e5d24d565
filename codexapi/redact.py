"""Keeping secrets out of logs, reprs, exceptions and cassettes.

One list of what counts as secret, used everywhere something is shown to a person.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
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
