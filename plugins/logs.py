"""First-party logging plugin: one line per request and response, on logger ``codexapi``
(a retry is logged where it is decided, by the call itself: :mod:`codexapi.call`).

Everything logged goes through :mod:`codexapi.redact`: credentials never reach a log record.
"""

from __future__ import annotations

import logging

from codexapi import HttpRequest, HttpResponse, Provider, hookimpl
from codexapi.plugin_api import redact_headers, redact_url

log = logging.getLogger("codexapi")


@hookimpl
def codexapi_on_request(provider: Provider, request: HttpRequest, attempt: int) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug("-> %s %s attempt=%d provider=%s headers=%s", request.method,
                  redact_url(request.url), attempt, provider.name,
                  redact_headers(request.headers, provider.secret_headers))


@hookimpl
def codexapi_on_response(provider: Provider, request: HttpRequest, response: HttpResponse,
                         attempt: int, elapsed: float) -> None:
    if log.isEnabledFor(logging.INFO):
        rid = response.headers.get("x-request-id") or response.headers.get("x-oai-request-id")
        log.info("<- %s %s status=%d attempt=%d elapsed=%.3fs request_id=%s", request.method,
                 redact_url(request.url), response.status, attempt, elapsed, rid or "-")
