"""What a plugin is written with: the one public module for wires, auths and observers, beside
the names ``codexapi`` itself exports (``Wire``, ``StreamDecoder``, ``Auth``, ``FlowAuth``,
``HttpRequest``, ``HttpResponse``, ``Transport``, the models, events and errors).

The first-party plugins (``codexapi_plugins``) import only from ``codexapi`` and from here, as
a plugin of yours does. Each name loads from the module that holds it when first used (as in
``codexapi``), so a plugin that needs neither urllib3 nor the WebSocket connection does not
pay for them.

- Wires: :class:`DecoderSettings`, :class:`SseStreamDecoder`, :class:`EventSource`,
  :class:`HttpEventSource`, :class:`WireContext`, the header names a Responses answer carries
  (``SAFETY_FASTER_MODEL_HEADER``, ``TURN_STATE_HEADER``), the failure mapping shared with core
  (``stream_failure``, ``incomplete_failure``, ``error_object``, ``http_error``,
  ``request_id``), rate-limit parsing (``parse_rate_limit_event``, ``parse_retry_after``,
  ``retry_after_seconds``), the structured-output format of a request (``format_of``).
- JSON: ``loads``, ``dumps``, ``item_from_json``, ``item_to_json``, ``options_to_json``,
  ``event_to_json`` / ``event_from_json`` (an event tagged by ``type``, unknown ones kept), and
  ``new_output_text_delta(text)`` / ``new_output_text_deltas(texts)`` (the decoders' fast way
  to build the commonest event, one or a run of them).
- Connections: :class:`Network` (a provider's proxy and TLS settings, and the socket path
  the HTTP transport uses), ``read_head``, ``status_of``, :class:`HeadError`, ``compress``,
  :class:`ProxySettings`, :class:`Deadline`.
- Secrets: the one rule (``is_secret_header``, ``scrub``, ``scrub_error``, ``preview``,
  ``redact_url``, ``redact_headers``, ``remember`` for values of your own), and for auths
  :class:`Token`, ``checked_secret`` and ``codex_home``.
- Retries and limits: :class:`Retries`, one call's retry state; ``openai_limits(snapshot)``
  (OpenAI's ``x-ratelimit-*`` values).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers see; _EXPORTS says the same for the runtime
    from .auth import Token, checked_secret
    from .auth_file import codex_home
    from .convert import (
        dumps,
        event_from_json,
        event_to_json,
        item_to_json,
        loads,
        options_to_json,
    )
    from .deadline import Deadline
    from .decoding import DecoderSettings
    from .error_mapping import (
        error_object,
        http_error,
        incomplete_failure,
        request_id,
        stream_failure,
    )
    from .events import new_output_text_delta, new_output_text_deltas
    from .header_events import SAFETY_FASTER_MODEL_HEADER, TURN_STATE_HEADER
    from .http.compression import compress
    from .http.connect import HeadError, Network, read_head, status_of
    from .http.proxy import ProxySettings
    from .items import item_from_json
    from .ratelimits import (
        openai_limits,
        parse_rate_limit_event,
        parse_retry_after,
        retry_after_seconds,
    )
    from .redact import (
        is_secret_header,
        preview,
        redact_headers,
        redact_url,
        remember,
        scrub,
        scrub_error,
    )
    from .retry import Retries
    from .schema import format_of
    from .sse import SseStreamDecoder
    from .wires import EventSource, HttpEventSource, WireContext

#: Each name, and the module of ``codexapi`` that holds it.
_EXPORTS: dict[str, str] = {
    "Token": "auth", "checked_secret": "auth",
    "codex_home": "auth_file",
    "dumps": "convert", "item_to_json": "convert", "loads": "convert",
    "options_to_json": "convert", "event_from_json": "convert", "event_to_json": "convert",
    "Deadline": "deadline",
    "DecoderSettings": "decoding",
    "error_object": "error_mapping", "http_error": "error_mapping",
    "incomplete_failure": "error_mapping", "request_id": "error_mapping",
    "stream_failure": "error_mapping",
    "SAFETY_FASTER_MODEL_HEADER": "header_events", "TURN_STATE_HEADER": "header_events",
    "compress": "http.compression",
    "HeadError": "http.connect", "Network": "http.connect", "read_head": "http.connect",
    "status_of": "http.connect",
    "ProxySettings": "http.proxy",
    "item_from_json": "items",
    "new_output_text_delta": "events", "new_output_text_deltas": "events",
    "parse_rate_limit_event": "ratelimits", "parse_retry_after": "ratelimits",
    "retry_after_seconds": "ratelimits", "openai_limits": "ratelimits",
    "is_secret_header": "redact", "preview": "redact", "redact_headers": "redact",
    "redact_url": "redact", "scrub": "redact", "scrub_error": "redact", "remember": "redact",
    "Retries": "retry",
    "format_of": "schema",
    "SseStreamDecoder": "sse",
    "EventSource": "wires", "HttpEventSource": "wires", "WireContext": "wires",
}

__all__ = [
    "SAFETY_FASTER_MODEL_HEADER",
    "TURN_STATE_HEADER",
    "Deadline",
    "DecoderSettings",
    "EventSource",
    "HeadError",
    "HttpEventSource",
    "Network",
    "ProxySettings",
    "Retries",
    "SseStreamDecoder",
    "Token",
    "WireContext",
    "checked_secret",
    "codex_home",
    "compress",
    "dumps",
    "error_object",
    "event_from_json",
    "event_to_json",
    "format_of",
    "http_error",
    "incomplete_failure",
    "is_secret_header",
    "item_from_json",
    "item_to_json",
    "loads",
    "new_output_text_delta",
    "new_output_text_deltas",
    "openai_limits",
    "options_to_json",
    "parse_rate_limit_event",
    "parse_retry_after",
    "preview",
    "read_head",
    "redact_headers",
    "redact_url",
    "remember",
    "request_id",
    "retry_after_seconds",
    "scrub",
    "scrub_error",
    "status_of",
    "stream_failure",
]

if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        where = _EXPORTS.get(name)
        if where is None:
            raise AttributeError(f"module 'codexapi.plugin_api' has no attribute {name!r}")
        value = getattr(import_module(f"codexapi.{where}"), name)
        globals()[name] = value  # found once: later lookups never come back here
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
