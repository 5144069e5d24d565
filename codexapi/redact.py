"""What a secret is, and keeping every secret out of what leaves the process.

The one rule (``Provider.secret_headers`` adds names to it). A value is secret when it is

- a value an auth produced: a header, query parameter or JSON body value the auth (or an
  ``auth_flow``) added or changed — tokens, keys, signatures;
- the value of a header whose name contains ``auth``, ``key``, ``token``, ``secret``,
  ``password`` or ``cookie`` (any case; ``signature`` and ``credential`` too), one that names
  an account (``ChatGPT-Account-ID``), or one named in ``Provider.secret_headers``;
- the value of a query parameter named like that (or ``sig``, ``code``...);
- in a recording, a string field of a JSON request body named like that.

Rate-limit counters (``x-ratelimit-remaining-tokens``) are counts, not credentials.

Every value a Client sends that the rule calls secret is remembered while the Client is open
(the most recent :data:`MAX_KNOWN` of them; :func:`remember` adds values for the life of the
process) and scrubbed from everything that leaves the process or is kept: log records of every
logger at every level (a log-record factory installed once, so urllib3's and websockets'
records are covered whatever wire runs), exception messages and their cause chains, reprs,
previews (which are scrubbed *before* being cut), spans and cassettes. A secret is found in its
raw spelling and in every JSON (``\\u0061``, ``\\/``), Python (``\\x61``) and
percent-encoded (``%61``, ``+``) spelling of any of its characters, mixed as a server may mix
them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import threading
import weakref
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "<redacted>"

#: Header names whose values are credentials or identify an account, besides the names the
#: words below match.
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

#: A header or query parameter whose name contains one of these (any case) holds a secret.
SECRET_WORDS = ("auth", "key", "token", "secret", "passw", "cookie", "signature", "credential")

_SECRET_WORDS = re.compile("|".join(SECRET_WORDS), re.IGNORECASE)

#: Query parameter names that carry credentials in URLs without saying so (presigned URLs,
#: OAuth codes).
_SECRET_QUERY = re.compile(r"^(sig|code|x-amz-security-token)$", re.IGNORECASE)

#: Names that contain a word above but hold no credential: rate-limit *counts* of tokens, and
#: the Responses field naming the conversation for prompt caching.
_NOT_SECRET_PREFIXES = ("x-ratelimit-",)
_NOT_SECRET_NAMES = frozenset({"prompt_cache_key"})

#: Values shorter than this are not searched for in text: replacing every "abc" would mangle
#: messages without protecting anything (they are still hidden wherever shown by name).
MIN_LENGTH = 6

#: How many secret values are remembered (most recent first kept): a process rotates a few
#: tokens, not thousands, and every scrub pays for each value remembered.
MAX_KNOWN = 32


def _lower_names(names: Iterable[str]) -> frozenset[str]:
    if not names:
        return frozenset()
    return frozenset(n.lower() for n in names)


@functools.lru_cache(maxsize=1024)
def _secret_name(lowered: str) -> bool:
    if lowered in SECRET_HEADERS:
        return True
    if lowered.startswith(_NOT_SECRET_PREFIXES) or lowered in _NOT_SECRET_NAMES:
        return False
    return bool(_SECRET_WORDS.search(lowered))


def is_secret_header(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether a header's value must never be shown (``extra``: more names, e.g.
    ``Provider.secret_headers``)."""
    lowered = name.lower()
    return _secret_name(lowered) or (bool(extra) and lowered in _lower_names(extra))


def is_secret_query(name: str, extra: Iterable[str] = ()) -> bool:
    """Whether a URL query parameter's value must never be shown."""
    return bool(_SECRET_QUERY.match(name)) or is_secret_header(name, extra)


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]],
                   extra: Iterable[str] = ()) -> dict[str, str]:
    """A copy of ``headers`` with every secret value replaced by ``<redacted>`` (by name, and
    known secret values inside any other value)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    names = _lower_names(extra)
    return {k: (REDACTED if is_secret_header(k, names) else
                scrub(v) if isinstance(v, str) else v) for k, v in items}


def redact_url(url: str, extra: Iterable[str] = ()) -> str:
    """``url`` with userinfo passwords, credential-like query values and known secret values
    replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return scrub(url)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{REDACTED}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        names = _lower_names(extra)
        if any(is_secret_query(k, names) for k, _ in pairs):
            query = urlencode(
                [(k, REDACTED if is_secret_query(k, names) else v) for k, v in pairs],
                safe="<>")
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment)))


def redact_query_params(params: Mapping[str, str], extra: Iterable[str] = ()) -> dict[str, str]:
    """A copy of ``params`` (e.g. ``Provider.query_params``) with credential values replaced."""
    names = _lower_names(extra)
    return {k: (REDACTED if is_secret_query(k, names) else v) for k, v in params.items()}


def mask(secret: str | None) -> str:
    """How a secret appears in a repr: its presence, never its value."""
    return "None" if secret is None else REDACTED


# --- which values are secret -----------------------------------------------------------------


def _with_token(value: str) -> list[str]:
    """``value`` and, for ``Bearer sk-...`` / ``Basic ...``, the credential after the scheme
    (what a server would echo)."""
    out = [value]
    scheme, _, token = value.partition(" ")
    if token.strip() and scheme.isalpha():
        out.append(token.strip())
    return out


def _usable(values: Iterable[str]) -> list[str]:
    """Values worth searching for, longest first (so a token is not half-replaced by a shorter
    secret inside it)."""
    found: set[str] = set()
    for value in values:
        if isinstance(value, str):
            # Trimmed too: HTTP drops the spaces around a header value or a reason phrase.
            found.update(v for v in (value, value.strip())
                         if len(v) >= MIN_LENGTH and REDACTED not in v)
    return sorted(found, key=len, reverse=True)


def _query_pairs(url: str) -> list[tuple[str, str]]:
    if "?" not in url:
        return []
    try:
        return parse_qsl(urlsplit(url).query, keep_blank_values=True)
    except ValueError:
        return []


def _json_strings(value: Any, names: frozenset[str], named: bool, out: list[str],
                  depth: int = 0) -> None:
    """String leaves of a parsed JSON value: all of them, or (``named``) only those of fields
    whose name the rule calls secret."""
    if depth > 64:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                if not named or (isinstance(key, str) and is_secret_header(key, names)):
                    out.append(item)
            else:
                _json_strings(item, names, named, out, depth + 1)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                if not named:
                    out.append(item)
            else:
                _json_strings(item, names, named, out, depth + 1)


def _json_body(body: Any) -> Any:
    if not isinstance(body, bytes | str) or not body:
        return None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    if text.lstrip()[:1] not in ("{", "["):
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def secrets_of(headers: Mapping[str, Any], url: str = "", extra: Iterable[str] = (),
               body: bytes | str | None = None,
               params: Mapping[str, str] | None = None) -> list[str]:
    """The secret values a request carries by the rule's names: secret headers' values (and
    the token after an auth scheme such as ``Bearer``), credential-like query values in
    ``url`` and in ``params`` (``Provider.query_params`` as given, before they are
    percent-encoded into URLs) and, given a JSON
    ``body``, its string fields named like secrets."""
    names = _lower_names(extra)
    found: list[str] = [v for k, v in (params or {}).items()
                        if isinstance(v, str) and is_secret_query(k, names)]
    for name, value in headers.items():
        if not isinstance(name, str) or not is_secret_header(name, names):
            continue
        for one in value if isinstance(value, list | tuple) else [value]:
            if isinstance(one, str):
                found.extend(_with_token(one))
    found.extend(v for k, v in _query_pairs(url) if is_secret_query(k, names))
    if body is not None:
        _json_strings(_json_body(body), names, True, found)
    return _usable(found)


class RequestView(NamedTuple):
    """What :func:`produced` compares: a request's headers, URL and body."""

    headers: Mapping[str, Any]
    url: str
    body: bytes | str | None


def snapshot(request: Any) -> RequestView:
    """A copy of ``request``'s headers, URL and body as they are now (an auth flow may change
    the request in place)."""
    return RequestView(dict(request.headers), request.url, request.body)


def produced(before: Any, after: Any) -> list[str]:
    """The values an auth produced: headers, query parameters and JSON body strings that
    ``after`` (the signed request) has and ``before`` (the request given to the auth) has not.
    Both are read by duck type: ``.headers``, ``.url``, ``.body``."""
    found: list[str] = []
    old_headers = {str(k).lower(): v for k, v in before.headers.items()}
    for name, value in after.headers.items():
        if isinstance(value, str) and old_headers.get(str(name).lower()) != value:
            found.extend(_with_token(value))
    if after.url != before.url:
        old = set(_query_pairs(before.url))
        found.extend(v for k, v in _query_pairs(after.url) if (k, v) not in old)
    if after.body is not before.body and after.body != before.body:
        new_strings: list[str] = []
        old_strings: list[str] = []
        _json_strings(_json_body(after.body), frozenset(), False, new_strings)
        _json_strings(_json_body(before.body), frozenset(), False, old_strings)
        old_set = set(old_strings)
        found.extend(s for s in new_strings if s not in old_set)
    return _usable(found)


# --- the values remembered -------------------------------------------------------------------

# Re-entrant: a finalizer run by the garbage collector while this thread holds it may log,
# and logging asks for the known secrets.
_lock = threading.RLock()
_holders: weakref.WeakSet[SecretSet] = weakref.WeakSet()
_version = 0
_snapshot: tuple[str, ...] = ()
_snapshot_version = -1


def _changed() -> None:
    global _version
    _version += 1


class SecretSet:
    """Secret values one owner (a Client) has sent, scrubbed from everything shown while the
    owner lives: :func:`known` is the union of every live set. Bounded to the most recent
    :data:`MAX_KNOWN` values. Thread-safe."""

    def __init__(self) -> None:
        self._values: dict[str, None] = {}
        with _lock:
            _holders.add(self)
        weakref.finalize(self, _changed)

    def add(self, values: Iterable[str]) -> None:
        usable = _usable(values)
        if not usable:
            return
        if all(v in self._values for v in usable):
            return  # the common case: the same credential, request after request
        with _lock:
            for value in usable:
                self._values.pop(value, None)
                self._values[value] = None
            while len(self._values) > MAX_KNOWN:
                del self._values[next(iter(self._values))]
            _changed()
        install_log_scrubbing()

    def clear(self) -> None:
        with _lock:
            if self._values:
                self._values.clear()
                _changed()

    def values(self) -> tuple[str, ...]:
        return tuple(self._values)


#: The values :func:`remember` adds: kept for the life of the process.
_process = SecretSet()


def remember(values: Iterable[str]) -> None:
    """Scrub ``values`` from everything shown, for the life of the process (a Client
    remembers what it sends by itself, for its own life)."""
    _process.add(values)


def known() -> tuple[str, ...]:
    """The secret values known now (of every live :class:`SecretSet`), longest first."""
    global _snapshot, _snapshot_version
    if _snapshot_version != _version:
        with _lock:
            version = _version
            found: set[str] = set()
            for holder in list(_holders):
                found.update(holder.values())
            _snapshot = tuple(sorted(found, key=len, reverse=True))
            _snapshot_version = version
    return _snapshot


# --- scrubbing ---------------------------------------------------------------------------------


def _hex(number: int, width: int) -> str:
    """``number`` in hex, each letter matching either case."""
    return "".join(f"[{d.lower()}{d.upper()}]" if d.isalpha() else d
                   for d in f"{number:0{width}x}")


#: The letter after a backslash that spells each character in JSON or Python.
_SHORT_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "'": "'", "\b": "b", "\f": "f",
                  "\n": "n", "\r": "r", "\t": "t"}

#: One backslash or more: an escape that was escaped again (the repr of a JSON body in a log
#: line spells ``\"`` as ``\\"``).
_BACKSLASHES = r"\\+"


def _char_pattern(ch: str) -> str:
    code = ord(ch)
    slash = _BACKSLASHES
    alternatives = [re.escape(ch)]
    if code > 0xFFFF:
        high = 0xD800 + ((code - 0x10000) >> 10)
        low = 0xDC00 + ((code - 0x10000) & 0x3FF)
        alternatives.append(f"{slash}u{_hex(high, 4)}{slash}u{_hex(low, 4)}")
        alternatives.append(f"{slash}U{_hex(code, 8)}")
    else:
        alternatives.append(f"{slash}u{_hex(code, 4)}")
    if code < 0x100:
        alternatives.append(f"{slash}x{_hex(code, 2)}")
    utf8 = ch.encode("utf-8", "surrogatepass")
    if code >= 0x80:
        # The repr of bytes: each UTF-8 byte as \xNN.
        alternatives.append("".join(f"{slash}x{_hex(b, 2)}" for b in utf8))
    if ch in _SHORT_ESCAPES:
        alternatives.append(slash + re.escape(_SHORT_ESCAPES[ch]))
    # Percent-encoded, possibly more than once (%2541 is %41 encoded again).
    alternatives.append("".join(f"%(?:25)*{_hex(b, 2)}" for b in utf8))
    if ch == " ":
        alternatives.append(r"\+")
    return "(?:" + "|".join(alternatives) + ")"


@functools.lru_cache(maxsize=256)
def _pattern(secret: str) -> re.Pattern[str]:
    # One pattern per secret, compiled once: a set of secrets that changes (a signature per
    # request) costs one small compile per new value, not a recompile of all of them.
    return re.compile("".join(_char_pattern(c) for c in secret))


def _all(secrets: Iterable[str]) -> tuple[str, ...]:
    current = known()
    given = _usable(secrets) if secrets else []
    if not given:
        return current
    return tuple(sorted({*given, *current}, key=len, reverse=True))


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret (and each of ``secrets``) replaced by ``<redacted>``,
    in any raw, escaped or percent-encoded spelling."""
    values = _all(secrets)
    if not values or not text:
        return text
    if "\\" not in text and "%" not in text and "+" not in text:
        # No escape anywhere: the raw spelling is the only one (and str.replace is fast).
        for value in values:
            if value in text:
                text = text.replace(value, REDACTED)
        return text
    for value in values:
        text = _pattern(value).sub(REDACTED, text)
    return text


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """:func:`scrub` (the name older callers use)."""
    return scrub(text, secrets)


def scrub_body(text: str, secrets: Iterable[str] = ()) -> str:
    """:func:`scrub` of a body's text (JSON escapes are among the spellings it finds)."""
    return scrub(text, secrets)


def scrub_bytes(data: bytes, secrets: Iterable[str] = ()) -> bytes:
    """:func:`scrub` of raw bytes; bytes that are not UTF-8 are kept as they are."""
    if not data or not _all(secrets):
        return data
    text = data.decode("utf-8", "surrogateescape")
    clean = scrub(text, secrets)
    return data if clean == text else clean.encode("utf-8", "surrogateescape")


def preview(text: str, limit: int, secrets: Iterable[str] = (), ellipsis: str = "…") -> str:
    """``text`` scrubbed, *then* cut to ``limit`` characters (``ellipsis`` ends a cut one):
    cutting first could leave part of a secret that no longer matches it whole."""
    text = scrub(text, secrets)
    return text if len(text) <= limit else text[:max(0, limit - len(ellipsis))] + ellipsis


def _scrub_json(value: Any, secrets: tuple[str, ...], depth: int = 0) -> Any:
    if isinstance(value, str):
        return scrub(value, secrets)
    if depth > 64:
        return value
    if isinstance(value, list):
        return [_scrub_json(v, secrets, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(_scrub_json(v, secrets, depth + 1) for v in value)
    if isinstance(value, dict):
        return {(scrub(k, secrets) if isinstance(k, str) else k):
                _scrub_json(v, secrets, depth + 1) for k, v in value.items()}
    return value


_E = TypeVar("_E", bound=BaseException)


def scrub_error(error: _E, secrets: Iterable[str] = ()) -> _E:
    """Remove every known secret (and ``secrets``) from ``error`` and its whole cause/context
    chain, in place: message, args, body, headers and details. Returns ``error``."""
    values = _all(secrets)
    if not values:
        return error
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        exc = todo.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        with contextlib.suppress(Exception):  # an exception type with read-only fields
            exc.args = tuple(_scrub_json(a, values) if isinstance(a, str | list | dict | tuple)
                             else a for a in exc.args)
        # Fields of C-level exceptions (UnicodeError.object, OSError.strerror) and anything an
        # exception keeps in its __dict__ (JSONDecodeError.doc, BadStatusLine.line...).
        names = {"reason", "strerror", "object", "filename", *getattr(exc, "__dict__", ())}
        for attr in names:
            value = getattr(exc, attr, None)
            if isinstance(value, str | list | dict):
                with contextlib.suppress(Exception):
                    setattr(exc, attr, _scrub_json(value, values))
            elif isinstance(value, bytes):
                with contextlib.suppress(Exception):
                    setattr(exc, attr, scrub_bytes(value, values))
        with contextlib.suppress(Exception):
            notes = getattr(exc, "__notes__", None)
            if isinstance(notes, list):
                exc.__notes__ = [scrub(n, values) if isinstance(n, str) else n for n in notes]
        todo.extend((exc.__cause__, exc.__context__))
    return error


# --- log records -------------------------------------------------------------------------------


def _looks_like_url(value: str) -> bool:
    return ("?" in value or "@" in value) and (value.startswith("/") or "://" in value)


def scrub_record(record: logging.LogRecord) -> None:
    """Scrub one log record in place: header dumps of a secret header (websockets' ``"> %s:
    %s"``), URLs' credential-like query values, and every known secret in its message,
    exception and stack text."""
    args = record.args
    if isinstance(args, tuple) and args:
        if (len(args) == 2 and isinstance(args[0], str) and isinstance(record.msg, str)
                and record.msg.endswith("%s: %s") and is_secret_header(args[0])):
            args = (args[0], REDACTED)
        record.args = args = tuple(redact_url(a) if isinstance(a, str) and _looks_like_url(a)
                                   else a for a in args)
    values = known()
    if not values:
        return
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it when the record is emitted
        message = None
    if message is not None:
        clean = scrub(message, values)
        if clean != message:
            record.msg, record.args = clean, ()
    exc_info = record.exc_info
    if exc_info and exc_info[1] is not None:
        scrub_error(exc_info[1], values)
        with contextlib.suppress(Exception):
            text = logging.Formatter().formatException(exc_info)
            clean = scrub(text, values)
            if clean != text:
                record.exc_text = clean
    if record.stack_info:
        record.stack_info = scrub(record.stack_info, values)


class _ScrubbingFactory:
    """Wraps the log-record factory in force when installed: every record of every logger
    passes through it, at every level, whichever handler later formats it."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, *args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = self.inner(*args, **kwargs)
        with contextlib.suppress(Exception):  # logging must never fail because of us
            scrub_record(record)
        return record


def install_log_scrubbing() -> None:
    """Make every log record pass through :func:`scrub_record` (once per process; a record
    factory set later by someone else should wrap the current one, as the logging docs ask)."""
    current = logging.getLogRecordFactory()
    if isinstance(current, _ScrubbingFactory):
        return
    with _lock:
        current = logging.getLogRecordFactory()
        if not isinstance(current, _ScrubbingFactory):
            logging.setLogRecordFactory(_ScrubbingFactory(current))
