"""Issue 25 part 4: every field of an error object may hold any JSON type. The failure classifier
(codexapi.error_mapping) reads what it understands and keeps the whole object as given
(``server_error``); a ``response.failed`` event or an HTTP error answer with such an object is a
typed codexapi error, never a bare ``TypeError``."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import codexapi
from codexapi import Client, Provider, ResponsesRequest, RetryPolicy
from codexapi.convert import loads
from codexapi.error_mapping import QUOTA_CODES, UNAVAILABLE_CODES, http_error, stream_failure
from codexapi.errors import ApiError, CodexApiError
from codexapi.server import EmbeddedServer, Exchange, route

#: Examples per property (the end-to-end one drives two calls per example).
EXAMPLES = 300
END_TO_END_EXAMPLES = 40

JSON_SCALARS = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
JSON = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
KNOWN = st.sampled_from(sorted({*QUOTA_CODES, *UNAVAILABLE_CODES, "context_length_exceeded",
                                "usage_limit_reached", "usage_not_included", "cyber_policy",
                                "bio_policy", "invalid_prompt", "server_is_overloaded",
                                "slow_down", "rate_limit_exceeded", "model", "service_tier",
                                "misalignment_policy_violation", "insufficient_quota"}))
FIELD = KNOWN | JSON
ERROR_OBJECTS = st.dictionaries(
    st.sampled_from(["code", "param", "message", "type", "plan_type", "resets_at",
                     "resets_in_seconds", "misalignment"]) | st.text(max_size=8),
    FIELD | st.integers() | st.floats(), max_size=8)


def check(error: Any, given_object: dict[str, Any]) -> None:
    assert isinstance(error, CodexApiError), type(error)
    assert isinstance(str(error), str) and isinstance(repr(error), str)
    assert isinstance(error.retryable, bool)
    code = getattr(error, "code", None)
    assert code is None or isinstance(code, str)
    assert same(error.server_error, given_object)


def same(a: Any, b: Any) -> bool:
    """Equality that holds NaN-free floats and nested values as given."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


@settings(max_examples=EXAMPLES, deadline=None)
@given(obj=ERROR_OBJECTS)
def test_a_response_failed_error_object_of_any_json_types_is_classified(
        obj: dict[str, Any]) -> None:
    check(stream_failure({"error": obj}), obj)


@settings(max_examples=EXAMPLES, deadline=None)
@given(obj=ERROR_OBJECTS, status=st.sampled_from([400, 401, 403, 404, 413, 429, 500, 503]))
def test_an_http_error_object_of_any_json_types_is_classified(obj: dict[str, Any],
                                                              status: int) -> None:
    try:
        body = json.dumps({"error": obj})
    except ValueError:
        return
    error = http_error(ApiError(status, "failed", body, headers={}))
    try:
        # What the server sent, as the library's JSON parser reads it (orjson reads an integer
        # below -2**63 as a float, and refuses one past 2**64: that body is kept as text).
        parsed = loads(body)["error"]
    except ValueError:
        parsed = None
    assert same(error.server_error, parsed)
    check(error, error.server_error)  # type: ignore[arg-type]


def test_param_as_an_object_and_code_as_a_number_are_kept_as_given() -> None:
    obj = {"param": {"name": "model"}, "code": 404, "message": ["not", "a", "string"]}
    error = stream_failure({"error": obj})
    assert type(error) is codexapi.StreamError and error.retryable
    assert error.server_error == obj
    assert error.message == '["not","a","string"]'  # a message of another type, as JSON
    assert stream_failure({"error": {"resets_in_seconds": 10**400,
                                     "code": "usage_limit_reached"}}).resets_at is None  # type: ignore[attr-defined]


# --- through the wires ---------------------------------------------------------------------------

_OBJECTS: list[Any] = []


@route("POST", "/error-object/responses")
def _failed(ex: Exchange) -> None:
    ex.send_events([{"type": "response.failed", "response": {"id": "r", "error": _OBJECTS[-1]}}])


@route("POST", "/error-object-http/responses")
def _http(ex: Exchange) -> None:
    ex.send_json(400, {"error": _OBJECTS[-1]})


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as srv:
        yield srv


@settings(max_examples=END_TO_END_EXAMPLES, deadline=None)
@given(obj=st.dictionaries(st.sampled_from(["code", "param", "message", "type"]),
                           st.recursive(st.none() | st.booleans() | st.integers(-2**53, 2**53)
                                        | st.text(max_size=20),
                                        lambda inner: st.lists(inner, max_size=3)
                                        | st.dictionaries(st.text(max_size=6), inner,
                                                          max_size=3), max_leaves=8),
                           min_size=1))
def test_clients_raise_typed_errors_for_any_error_object(server: EmbeddedServer,
                                                         obj: dict[str, Any]) -> None:
    _OBJECTS.append(obj)
    for path in ("error-object", "error-object-http"):
        provider = Provider(base_url=f"{server.base_url}/{path}",
                            retry=RetryPolicy(max_attempts=1), stream_max_retries=0)
        with Client(provider, load_entrypoints=False) as client, \
                pytest.raises(CodexApiError) as info:
            client.stream(ResponsesRequest(model="m", input="x")).collect()
        assert info.value.server_error == obj
