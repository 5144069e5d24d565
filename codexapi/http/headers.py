"""What may go in an HTTP header, checked before anything is sent.

http.client rejects a bad header only while sending, with the value (often a credential)
quoted in a ValueError or UnicodeEncodeError; and such an error looks like a transport failure
that a retry could cure. Checking first turns it into a local error that quotes no value.
The rule is the crate's (``HeaderName``/``HeaderValue::from_str``): names are RFC 9110 tokens,
values printable ASCII, spaces and tabs.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\t\x20-\x7e]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def has_control(text: str) -> bool:
    """Whether ``text`` holds a control character (a line break, NUL, DEL...)."""
    return _CONTROL.search(text) is not None


def header_problem(name: Any, value: Any) -> str | None:
    """Why ``name: value`` cannot be sent, or None. Never quotes the value."""
    if not isinstance(name, str) or not _TOKEN.fullmatch(name):
        shown = repr(name)[:40] if isinstance(name, str) else type(name).__name__
        return (f"the header name {shown} is not a valid HTTP header name (letters, digits "
                "and !#$%&'*+-.^_`|~ only; no spaces or colons)")
    if not isinstance(value, str):
        return f"the header {name!r} has a {type(value).__name__} value; values are str"
    if _VALUE.fullmatch(value):
        return None
    bad = next(i for i, c in enumerate(value) if not _VALUE.fullmatch(c))
    char = value[bad]
    if char in "\r\n":
        what = "a line break"
    elif ord(char) < 0x20 or ord(char) == 0x7F:
        what = "a control character"
    else:
        what = "a non-ASCII character"
    return (f"the value of header {name!r} contains {what} (at index {bad}); header values "
            "must be printable ASCII")


def check_headers(headers: Any) -> str | None:
    """The first problem among ``headers`` (a mapping), or None."""
    for name, value in headers.items():
        problem = header_problem(name, value)
        if problem is not None:
            return problem
    return None
