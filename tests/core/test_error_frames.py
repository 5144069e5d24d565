"""error_mapping.error_object: an error object that arrived already parsed (a WebSocket error
frame) is mapped by the same rules as the HTTP error answer it stands for."""

from __future__ import annotations

import json
from typing import Any

import pytest

from codexapi import error_mapping
from codexapi.errors import ApiError

CASES: list[tuple[int, dict[str, Any], dict[str, str]]] = [
    (429, {"type": "usage_limit_reached", "message": "limit", "plan_type": "plus",
           "resets_in_seconds": 60}, {"x-codex-primary-used-percent": "100"}),
    (429, {"code": "insufficient_quota", "message": "quota"}, {}),
    (429, {"code": "rate_limit_exceeded", "message": "slow"}, {"retry-after": "3"}),
    (400, {"code": "cyber_policy", "message": ""}, {}),
    (400, {"code": "context_length_exceeded", "message": "too long"}, {}),
    (404, {"code": "model_not_found", "message": "no such model"}, {}),
    (503, {"code": "server_is_overloaded", "message": "busy"}, {}),
    (500, {"message": "boom"}, {"x-request-id": "req-1"}),
    (401, {"message": "bad key", "type": "invalid_request_error"}, {}),
]


@pytest.mark.parametrize(("status", "error", "headers"), CASES)
def test_a_parsed_error_object_maps_as_its_http_answer(status: int, error: dict[str, Any],
                                                       headers: dict[str, str]) -> None:
    body = json.dumps({"error": error})
    message, code = "m", error.get("code") or error.get("type")
    from codexapi.ratelimits import retry_after_seconds

    over_http = error_mapping.http_error(ApiError(
        status, error.get("message") or message, body,
        request_id=error_mapping.request_id(headers), code=code,
        retry_after=retry_after_seconds(headers), headers=headers))
    frame = json.dumps({"type": "error", "status_code": status, "error": error})
    parsed = error_mapping.error_object(status, error, headers, frame, "ws://h/v1/responses",
                                        "in a WebSocket error frame")
    assert type(parsed) is type(over_http)
    assert parsed.retryable == over_http.retryable
    assert getattr(parsed, "status", None) == status
    assert getattr(parsed, "request_id", None) == getattr(over_http, "request_id", None)
    assert getattr(parsed, "retry_after", None) == getattr(over_http, "retry_after", None)


def test_an_error_object_without_a_message_says_where_the_status_came_from() -> None:
    err = error_mapping.error_object(502, None, {}, "{}", None, "in a WebSocket error frame")
    assert isinstance(err, ApiError) and err.retryable
    assert err.message == "HTTP 502 in a WebSocket error frame"
