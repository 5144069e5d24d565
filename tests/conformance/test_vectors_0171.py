"""The crate's newer unit tests, ported as input/expected pairs (as the first vectors B1-B12,
F1-F7 were): ``sse/responses.rs`` (events and ``response.failed`` classification, V1-V30),
``api_bridge_tests.rs`` (HTTP error answers, A1-A17) and ``rate_limits.rs`` (R1-R5).

Each vector feeds the real decoder or the real HTTP-error mapping; the expected values are the
crate's, in codexapi's names (``ApiError::InvalidPrompt`` -> InvalidRequest, ``BioPolicy`` and
``MisalignmentPolicyViolation`` -> InvalidRequest with their ``code``, ``RateLimitExceeded``
for ``slow_down`` -> ServerOverloaded that may be retried).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from codexapi import (
    ApiError,
    ApiRateLimitError,
    CodexApiError,
    Completed,
    Created,
    CyberPolicy,
    InvalidRequest,
    ModelsEtag,
    ModelUnavailable,
    ModelVerifications,
    OutputItemDone,
    OutputTextDelta,
    QuotaExceeded,
    RateLimitError,
    RateLimits,
    ReasoningSummaryDone,
    SafetyBuffering,
    ServerModel,
    ServerOverloaded,
    ServerReasoningIncluded,
    StreamError,
    ToolCallInputDelta,
    TurnModerationMetadata,
    UsageLimitReached,
    UsageNotIncluded,
)
from codexapi.error_mapping import http_error, stream_failure
from codexapi.header_events import header_events
from codexapi.ratelimits import parse_all_rate_limits, parse_rate_limit_updates, parse_rate_limits
from codexapi_plugins.wire_responses import ResponsesDecoder

CYBER_MODEL = "gpt-5.3-codex"
DONE = {"type": "response.completed", "response": {"id": "resp-1"}}


def run(*events: dict[str, Any], faster_model: str | None = None) -> list[Any]:
    """Decode the events as one stream; a raised error is the last element."""
    dec = ResponsesDecoder(faster_model)
    out: list[Any] = dec.feed_data([json.dumps(e) for e in events])
    try:
        out.extend(dec.close())
    except CodexApiError as exc:
        out.append(exc)
    return out


def failed(error: dict[str, Any]) -> dict[str, Any]:
    return {"type": "response.failed", "sequence_number": 3,
            "response": {"id": "resp_x", "status": "failed", "error": error}}


# --- sse/responses.rs: events -----------------------------------------------------------------


def test_v1_items_and_completed_keep_unknown_fields() -> None:
    out = run({"type": "response.output_item.done", "item": {
        "type": "message", "role": "assistant", "phase": "commentary",
        "content": [{"type": "output_text", "text": "Hello"}]}}, {**DONE,
        "response": {"id": "resp1"}})
    assert isinstance(out[0], OutputItemDone) and out[0].item.phase == "commentary"
    assert out[1] == Completed("resp1", None, None)


def test_v2_reasoning_summary_done() -> None:
    out = run({"type": "response.reasoning_summary_text.done", "item_id": "reasoning-1",
               "summary_index": 0, "text": "Checking"}, DONE)
    assert out[0] == ReasoningSummaryDone("reasoning-1", "Checking", 0)


def test_v3_tool_search_call_item_is_kept_whole() -> None:
    item = {"type": "tool_search_call", "call_id": "search-1", "execution": "client",
            "arguments": {"query": "calendar create", "limit": 1}}
    out = run({"type": "response.output_item.done", "item": item}, DONE)
    assert len(out) == 2 and out[0].item.raw == item and out[0].item.execution == "client"


def test_v4_tool_call_input_deltas() -> None:
    out = run({"type": "response.custom_tool_call_input.delta", "item_id": "ctc_1",
               "call_id": "call_1", "delta": "*** Begin"},
              {"type": "response.function_call_arguments.delta", "item_id": "fc_1",
               "delta": '{"input":"'}, DONE)
    assert out[:2] == [ToolCallInputDelta("ctc_1", "call_1", "*** Begin"),
                       ToolCallInputDelta("fc_1", None, '{"input":"')]
    assert isinstance(out[2], Completed)


def test_v5_completed_end_turn() -> None:
    out = run({"type": "response.completed", "response": {"id": "r", "end_turn": False}})
    assert out == [Completed("r", None, False)]


@pytest.mark.parametrize("event", [
    {"type": "response.new_tool_event", "sequence_number": 1},
    {"type": "response.refusal.delta", "delta": "no", "sequence_number": 1},
    {"type": "response.mcp_call_arguments.delta", "delta": "chunk", "sequence_number": 1},
], ids=["unknown", "refusal_delta", "mcp_call_arguments_delta"])
def test_v6_unhandled_event_kinds_are_skipped(event: dict[str, Any]) -> None:
    assert run(event, DONE) == [Completed("resp-1")]


def test_v7_created_carries_the_response_id_and_ignores_the_body_model() -> None:
    out = run({"type": "response.created", "response": {"id": "resp-1", "model": CYBER_MODEL}},
              {**DONE, "response": {"id": "resp-1", "model": CYBER_MODEL}})
    assert out == [Created("resp-1"), Completed("resp-1")]


def test_v8_server_model_from_response_headers_payload() -> None:
    out = run({"type": "response.created", "response": {
        "id": "resp-1", "headers": {"OpenAI-Model": CYBER_MODEL}}}, DONE)
    assert out == [ServerModel(CYBER_MODEL), Created("resp-1"), Completed("resp-1")]


def test_v9_server_model_only_when_it_changes() -> None:
    created = {"type": "response.created", "response": {"id": "r", "headers": {
        "openai-model": ["m1"]}}}
    meta = {"type": "response.metadata", "headers": {"x-openai-model": "m1"}}
    meta2 = {"type": "response.metadata", "headers": {"x-openai-model": "m2"}}
    out = run(created, meta, meta2, DONE)
    assert [e for e in out if isinstance(e, ServerModel)] == [ServerModel("m1"),
                                                                ServerModel("m2")]


def test_v10_model_verifications_from_metadata() -> None:
    out = run({"type": "response.metadata", "sequence_number": 1, "response_id": "resp-1",
               "metadata": {"openai_verification_recommendation": [
                   "trusted_access_for_cyber", "trusted_access_for_cyber", "unknown_kind"]}},
              DONE)
    assert out == [ModelVerifications(["trusted_access_for_cyber"]), Completed("resp-1")]


def test_v11_turn_moderation_metadata() -> None:
    out = run({"type": "response.metadata", "metadata": {
        "openai_chatgpt_moderation_metadata": {"presentation": "inline"}}}, DONE)
    assert out == [TurnModerationMetadata({"presentation": "inline"}), Completed("resp-1")]


def test_v12_safety_buffering_notices_do_not_drop_events() -> None:
    sb = {"use_cases": ["cyber"], "reasons": ["user_risk"]}
    out = run({"type": "response.created", "response": {"id": "resp-1"},
               "safety_buffering": False},
              {"type": "response.output_text.delta", "delta": "hello",
               "safety_buffering": {**sb, "retry_model": "gpt-fast-wire"}},
              {"type": "response.output_text.delta", "delta": " world", "safety_buffering": sb},
              {**DONE, "safety_buffering": sb})
    assert len(out) == 7
    assert out[0] == Created("resp-1")
    assert out[1] == SafetyBuffering(["cyber"], ["user_risk"], "gpt-fast-wire")
    assert out[2] == OutputTextDelta("hello")
    assert out[3] == SafetyBuffering(["cyber"], ["user_risk"], None)
    assert out[4] == OutputTextDelta(" world")
    assert isinstance(out[5], SafetyBuffering) and out[6] == Completed("resp-1")


@pytest.mark.parametrize(("retry_model", "expected"), [
    ("absent", "gpt-fast-header"), (None, None), ("gpt-fast-wire", "gpt-fast-wire")])
def test_v13_safety_buffering_retry_model_falls_back_only_when_omitted(
        retry_model: Any, expected: str | None) -> None:
    sb: dict[str, Any] = {"use_cases": ["cyber"], "reasons": ["user_risk"]}
    if retry_model != "absent":
        sb["retry_model"] = retry_model
    out = run({"type": "response.output_text.delta", "safety_buffering": sb},
              faster_model="gpt-fast-header")
    assert out[0] == SafetyBuffering(["cyber"], ["user_risk"], expected, True)


def test_v14_safety_buffering_from_metadata_and_top_level_wins() -> None:
    nested = {"type": "safety_buffering", "use_cases": ["nested"], "reasons": ["r"]}
    out = run({"type": "response.metadata", "metadata": nested}, faster_model="fast")
    assert out[0] == SafetyBuffering(["nested"], ["r"], "fast")
    out = run({"type": "response.metadata", "metadata": nested,
               "safety_buffering": {"use_cases": ["top_level"], "reasons": ["t"]}})
    assert out[0] == SafetyBuffering(["top_level"], ["t"], None)
    for top_level in (False, {"use_cases": ["cyber"]}, None):
        out = run({"type": "response.metadata", "metadata": nested,
                   "safety_buffering": top_level})
        assert not any(isinstance(e, SafetyBuffering) for e in out)


def test_v15_codex_rate_limits_event() -> None:
    out = run({"type": "codex.rate_limits", "plan_type": "pro", "metered_limit_name":
               "codex-other", "rate_limits": {"primary": {
                   "used_percent": 42.0, "window_minutes": 60, "reset_at": 1700000000},
                   "secondary": None}, "credits": {"has_credits": True, "unlimited": False,
                                                    "balance": "12.5"}}, DONE)
    snap = out[0].snapshot
    assert isinstance(out[0], RateLimits) and snap.limit_id == "codex_other"
    assert snap.plan_type == "pro" and snap.primary.used_percent == 42.0
    assert snap.primary.window_minutes == 60 and snap.primary.resets_at == 1700000000
    assert snap.secondary is None and snap.credits.balance == "12.5"


def test_v16_header_events_in_the_crate_order() -> None:
    headers = {"x-request-id": "req-1", "openai-model": CYBER_MODEL,
               "x-codex-primary-used-percent": "10", "x-codex-other-primary-used-percent":
               "20", "x-models-etag": "W/\"etag\" ", "x-reasoning-included": "true",
               "openai-verification-recommendation": "trusted_access_for_cyber"}
    out = header_events(headers)
    assert [type(e) for e in out] == [ServerModel, RateLimits, RateLimits, ModelsEtag,
                                      ServerReasoningIncluded]
    assert [e.snapshot.limit_id for e in out[1:3]] == ["codex", "codex_other"]
    assert out[3].etag == 'W/"etag" ' and out[4].included is True  # the value as sent
    assert header_events({"content-type": "text/event-stream"}) == []


# --- sse/responses.rs: response.failed ------------------------------------------------------

RATE_MSG = ("Rate limit reached for gpt-5.1 in organization org-AAA on tokens per min (TPM): "
            "Limit 30000, Used 22999, Requested 12528. Please try again in 11.054s. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.")
FLAGGED = "This request has been flagged for possible cybersecurity risk."
BIO = "This content was flagged for possible biological risk."
MISALIGNED = "This request was blocked due to a misalignment policy violation."
UNAVAILABLE = "The selected model is unavailable."

#: (vector, error object, class, message, retryable, delay)
FAILED = [
    ("V17 rate limit keeps its delay", {"code": "rate_limit_exceeded", "message": RATE_MSG},
     RateLimitError, RATE_MSG, True, 11.054),
    *[(f"V18 {code} beats param {param}", {"code": code, "param": param,
                                          "message": "Please try again in 1s."},
       RateLimitError if code == "rate_limit_exceeded" else ServerOverloaded,
       "Please try again in 1s.", True, 1.0)
      for code in ("rate_limit_exceeded", "slow_down")
      for param in ("model", "service_tier", "reasoning.effort")],
    ("V19 unknown code gets no delay", {"code": "unknown_error",
                                        "message": "Rate limit reached. Please try again in 1s."},
     StreamError, "Rate limit reached. Please try again in 1s.", True, None),
    ("V20 cyber policy", {"code": "cyber_policy",
                          "message": "This request was flagged for cyber policy."},
     CyberPolicy, "This request was flagged for cyber policy.", False, None),
    ("V21 cyber policy blank message", {"code": "cyber_policy", "message": "   "},
     CyberPolicy, FLAGGED, False, None),
    ("V22 misalignment", {"type": "invalid_request_error", "code":
                          "misalignment_policy_violation",
                          "message": "This request violated the misalignment policy."},
     InvalidRequest, "This request violated the misalignment policy.", False, None),
    *[(f"V23 misalignment fallback {m!r}", {"code": "misalignment_policy_violation",
                                           "message": m}, InvalidRequest, MISALIGNED, False,
       None) for m in ("", "   ")],
    ("V24 invalid prompt", {"code": "invalid_prompt", "message":
                            "Invalid prompt: we've limited access to this content for safety "
                            "reasons."}, InvalidRequest,
     "Invalid prompt: we've limited access to this content for safety reasons.", False, None),
    ("V24 bio policy", {"code": "bio_policy", "message": BIO}, InvalidRequest, BIO, False,
     None),
    *[(f"V25 invalid prompt beats param {p}", {"type": "invalid_request_error", "code":
                                              "invalid_prompt", "param": p,
                                              "message": "The prompt was rejected."},
       InvalidRequest, "The prompt was rejected.", False, None)
      for p in ("model", "service_tier", "reasoning.effort")],
    *[(f"V26 bio policy message {m!r}", {"code": "bio_policy", **({} if m is None else {
        "message": m})}, InvalidRequest, BIO, False, None) for m in (None, "", "  ")],
    *[(f"V26 invalid prompt message {m!r}", {"code": "invalid_prompt", **({} if m is None else {
        "message": m})}, InvalidRequest, "Invalid request." if m is None else m, False, None)
      for m in (None, "", "  ")],
    *[(f"V27 unavailable code {c}", {"code": c, "message": f"unrelated {c}"}, ModelUnavailable,
       f"unrelated {c}", False, None)
      for c in ("model_not_found", "model_not_supported", "unsupported_model",
                "service_tier_not_supported", "unsupported_service_tier",
                "reasoning_effort_not_supported", "unsupported_reasoning_effort")],
    *[(f"V28 unavailable param {p}", {"code": "invalid_value", "param": p,
                                     "message": "unrelated diagnostic"}, ModelUnavailable,
       "unrelated diagnostic", False, None) for p in ("service_tier", "reasoning.effort")],
    ("V29 unavailable fallback", {"code": "model_not_found", "message": " "},
     ModelUnavailable, UNAVAILABLE, False, None),
    ("V29 overloaded beats model param", {"code": "server_is_overloaded", "param": "model",
                                          "message": "The requested model test-model does "
                                          "not support reasoning effort high."},
     ServerOverloaded, None, False, None),
    ("V29 model param without a known code", {"code": "future_model_error", "param": "model",
                                              "message": "candidate rejected"},
     ModelUnavailable, "candidate rejected", False, None),
    ("V30 model prose alone is not unavailable", {"code": "invalid_request", "message":
                                                  "The requested model does not support it."},
     StreamError, "The requested model does not support it.", True, None),
]


@pytest.mark.parametrize(("error", "kind", "message", "retryable", "delay"),
                         [v[1:] for v in FAILED], ids=[v[0] for v in FAILED])
def test_response_failed_classification(error: dict[str, Any], kind: type, message: str | None,
                                        retryable: bool, delay: float | None) -> None:
    out = run(failed(error))
    assert len(out) == 1 and type(out[0]) is kind
    if message is not None:
        assert out[0].message == message
    assert out[0].retryable is retryable
    assert getattr(out[0], "delay", None) == (pytest.approx(delay) if delay else None)


def test_v31_structured_usage_limit_is_semantic() -> None:
    error = stream_failure({"error": {"type": "usage_limit_reached", "resets_at": 4102444800,
                                      "message": "display text is not classification input"}})
    assert isinstance(error, UsageLimitReached) and not error.retryable
    assert error.resets_at == datetime(2100, 1, 1, tzinfo=UTC)


# --- api_bridge_tests.rs: HTTP error answers --------------------------------------------------


def http(status: int, error: Any, headers: dict[str, str] | None = None,
         wrapped: bool = False) -> CodexApiError:
    data: dict[str, Any] = {"error": error}
    if wrapped:
        data = {"type": "error", "status": status, **data}
    body = json.dumps(data)
    message = error.get("message") if isinstance(error, dict) else None
    base = ApiError(status, message or "error", body, request_id="req-1",
                    headers=headers or {})
    return http_error(base)


@pytest.mark.parametrize(("code", "kind", "retryable"), [
    ("server_is_overloaded", ServerOverloaded, False), ("slow_down", ServerOverloaded, True),
    ("unknown_error", ApiError, True)])
def test_a1_503_capacity_versus_slow_down(code: str, kind: type, retryable: bool) -> None:
    err = http(503, {"code": code, "message": "retry later"})
    assert type(err) is kind and err.retryable is retryable


def test_a2_503_overloaded_with_model_param() -> None:
    err = http(503, {"code": "server_is_overloaded", "param": "model",
                     "message": "The requested model test-model is unavailable."})
    assert isinstance(err, ServerOverloaded)


def test_a3_usage_limit_beats_model_fields() -> None:
    err = http(429, {"type": "usage_limit_reached", "plan_type": "pro", "param": "model",
                     "code": "model_not_found", "message": "unavailable"})
    assert isinstance(err, UsageLimitReached) and isinstance(err, ApiError)
    assert err.plan_type == "pro" and not err.retryable and err.status == 429


@pytest.mark.parametrize("param", ["model", "service_tier", "reasoning.effort"])
@pytest.mark.parametrize(("code", "kind"), [
    ("bio_policy", InvalidRequest), ("cyber_policy", CyberPolicy),
    ("misalignment_policy_violation", InvalidRequest)])
def test_a4_policy_errors_beat_routing_params(code: str, kind: type, param: str) -> None:
    err = http(400, {"code": code, "param": param, "message": "Policy rejection."})
    assert isinstance(err, kind) and isinstance(err, ApiError) and err.status == 400
    assert not err.retryable and err.code == code


def test_a5_cyber_policy_from_a_400_body_plain_wrapped_and_blank() -> None:
    msg = "This request has been flagged for potentially high-risk cyber activity."
    err = http(400, {"message": msg, "type": "invalid_request", "param": None,
                     "code": "cyber_policy"})
    assert isinstance(err, CyberPolicy) and err.message == msg and err.status == 400
    wrapped = http(400, {"message": "This websocket request was flagged.",
                         "type": "invalid_request", "code": "cyber_policy"}, wrapped=True)
    assert isinstance(wrapped, CyberPolicy)
    assert wrapped.message == "This websocket request was flagged."
    assert http(400, {"code": "cyber_policy"}).message == FLAGGED


@pytest.mark.parametrize("status", [400, 404])
@pytest.mark.parametrize("code", ["model_not_found", "model_not_supported", "unsupported_model",
                                  "service_tier_not_supported", "unsupported_service_tier",
                                  "reasoning_effort_not_supported",
                                  "unsupported_reasoning_effort"])
def test_a6_request_configuration_codes(code: str, status: int) -> None:
    err = http(status, {"message": "unrelated diagnostic", "type": "invalid_request_error",
                        "param": None, "code": code})
    assert isinstance(err, ModelUnavailable) and err.message == "unrelated diagnostic"


@pytest.mark.parametrize("param", ["service_tier", "reasoning.effort", "model"])
def test_a7_request_configuration_params(param: str) -> None:
    err = http(400, {"message": "unrelated diagnostic", "param": param, "code": "invalid_value"})
    assert isinstance(err, ModelUnavailable) and not err.retryable


def test_a8_no_parameter_classification_for_server_errors() -> None:
    err = http(500, {"message": "internal failure", "param": "model", "code": "internal_error"})
    assert type(err) is ApiError and err.retryable


def test_a9_model_prose_stays_generic() -> None:
    err = http(400, {"message": "The requested model test-model does not support reasoning "
                     "effort high or service tier priority.", "type": "invalid_request_error",
                     "param": None, "code": "invalid_request"})
    assert type(err) is ApiError and not err.retryable


def test_a10_unavailable_fallback_message() -> None:
    err = http(400, {"message": " ", "type": "invalid_request_error", "param": "model",
                     "code": None})
    assert isinstance(err, ModelUnavailable) and err.message == UNAVAILABLE


@pytest.mark.parametrize("wrapped", [False, True])
@pytest.mark.parametrize("message", ["This request was blocked by bio policy.", None, "", "  "])
def test_a11_bio_policy_plain_and_wrapped(message: str | None, wrapped: bool) -> None:
    error: dict[str, Any] = {"code": "bio_policy"}
    if message is not None:
        error["message"] = message
    err = http(400, error, wrapped=wrapped)
    expected = message if message and message.strip() else BIO
    assert isinstance(err, InvalidRequest) and err.message == expected and not err.retryable


@pytest.mark.parametrize("status", [400, 403])
def test_a12_misalignment_keeps_its_details(status: int) -> None:
    details = {"error_type": "unauthorized_data_transfer",
               "detailed_explanation": "The agent attempted an external transfer.",
               "steer": {"message": "Do not transfer the user's files."}}
    err = http(status, {"message": "This request violated the misalignment policy.",
                        "code": "misalignment_policy_violation", "misalignment": details})
    assert isinstance(err, InvalidRequest) and err.info["misalignment"] == details


def test_a13_unknown_400_stays_generic() -> None:
    err = http(400, {"message": "Some other bad request.", "code": "some_other_policy"})
    assert type(err) is ApiError and err.status == 400


@pytest.mark.parametrize(("error", "kind"), [
    ({"type": "insufficient_quota"}, QuotaExceeded),
    ({"code": "insufficient_quota"}, QuotaExceeded),
    ({"code": "credit_balance_exhausted"}, QuotaExceeded),
    ({"code": "organization_spend_limit_exceeded"}, QuotaExceeded),
    ({"code": "project_spend_limit_exceeded"}, QuotaExceeded),
    ({"code": "organization_usage_limit_exceeded"}, QuotaExceeded),
    ({"type": "usage_not_included"}, UsageNotIncluded),
    ({"type": "rate_limit_error", "code": "rate_limit_exceeded"}, ApiRateLimitError),
    ({"type": "rate_limit_error", "code": "slow_down"}, ApiRateLimitError),
])
def test_a14_429_quota_errors_versus_rate_limits(error: dict[str, Any], kind: type) -> None:
    err = http(429, error)
    assert isinstance(err, kind) and isinstance(err, ApiError)
    if kind is ApiRateLimitError:
        assert isinstance(err, ApiError) and isinstance(err, RateLimitError) and err.retryable
    else:
        assert not err.retryable and err.status == 429


def test_a15_usage_limit_snapshot_of_the_active_limit() -> None:
    headers = {"x-codex-active-limit": "codex_other", "x-codex-other-limit-name": "codex_other",
               "x-codex-other-primary-used-percent": "100"}
    err = http(429, {"type": "usage_limit_reached", "plan_type": "pro"}, headers)
    assert isinstance(err, UsageLimitReached)
    assert err.rate_limits.limit_id == "codex_other"
    assert err.rate_limits.limit_name == "codex_other"
    # No limit-name header: no name (the id is not used as one).
    err = http(429, {"type": "usage_limit_reached"}, {"x-codex-active-limit": "codex_other"})
    assert isinstance(err, UsageLimitReached) and err.rate_limits.limit_name is None


def test_a16_usage_limit_credits_and_resets() -> None:
    headers = {"x-codex-credits-has-credits": "true", "x-codex-credits-unlimited": "false",
               "x-codex-credits-balance": ""}
    err = http(429, {"type": "usage_limit_reached", "resets_in_seconds": 60}, headers)
    assert isinstance(err, UsageLimitReached)
    credits = err.rate_limits.credits
    assert (credits.has_credits, credits.unlimited, credits.balance) == (True, False, None)
    assert err.resets_at is not None and err.resets_at.tzinfo is UTC
    assert 0 < (err.resets_at - datetime.now(UTC)).total_seconds() <= 61
    by_code = http(429, {"code": "usage_limit_reached", "resets_at": 1738888888})
    assert isinstance(by_code, UsageLimitReached)
    assert by_code.resets_at == datetime.fromtimestamp(1738888888, UTC)


def test_a17_request_id_falls_back_to_cf_ray() -> None:
    from codexapi.error_mapping import request_id

    assert request_id({"x-request-id": "req-401", "cf-ray": "ray"}) == "req-401"
    assert request_id({"x-oai-request-id": "oai", "cf-ray": "ray"}) == "oai"
    assert request_id({"cf-ray": "ray-401"}) == "ray-401"
    assert request_id({}) is None


# --- rate_limits.rs ---------------------------------------------------------------------------


def test_r1_defaults_to_codex_headers() -> None:
    snap = parse_rate_limits({"x-codex-primary-used-percent": "12.5",
                              "x-codex-primary-window-minutes": "60",
                              "x-codex-primary-reset-at": "1704069000"})
    assert (snap.limit_id, snap.limit_name) == ("codex", None)
    assert (snap.primary.used_percent, snap.primary.window_minutes,
            snap.primary.resets_at) == (12.5, 60, 1704069000)


def test_r2_reads_a_named_family() -> None:
    snap = parse_rate_limits({"x-codex-secondary-primary-used-percent": "80",
                              "x-codex-secondary-primary-window-minutes": "1440",
                              "x-codex-secondary-primary-reset-at": "1704074400"},
                             "codex_secondary")
    assert snap.limit_id == "codex_secondary" and snap.limit_name is None
    assert (snap.primary.used_percent, snap.primary.window_minutes) == (80.0, 1440)
    assert snap.secondary is None


def test_r3_limit_name_header() -> None:
    snap = parse_rate_limits({"x-codex-bengalfox-primary-used-percent": "80",
                              "x-codex-bengalfox-limit-name": "gpt-5.2-codex-sonic"},
                             "codex_bengalfox")
    assert snap.limit_name == "gpt-5.2-codex-sonic"


def test_r4_all_families_and_only_those_with_data() -> None:
    headers = {"x-codex-primary-used-percent": "12.5",
               "x-codex-secondary-primary-used-percent": "80",
               "x-codex-other-primary-used-percent": "0"}
    assert [s.limit_id for s in parse_rate_limit_updates(headers)] == ["codex",
                                                                        "codex_secondary"]
    assert [s.limit_id for s in parse_all_rate_limits(headers)] == ["codex", "codex_secondary"]
    only_other = {"x-codex-other-primary-used-percent": "20"}
    assert [s.limit_id for s in parse_all_rate_limits(only_other)] == ["codex_other"]


def test_r5_no_headers_one_empty_codex_update_and_no_event() -> None:
    updates = parse_rate_limit_updates({})
    assert len(updates) == 1 and updates[0].limit_id == "codex" and updates[0].primary is None
    assert parse_all_rate_limits({}) == []


# --- endpoint/responses_websocket.rs ----------------------------------------------------------


def test_w1_wrapped_websocket_error_is_the_http_status() -> None:
    from codexapi_plugins.wire_websocket import error_frame

    payload = json.dumps({"type": "error", "status_code": 429, "error": {
        "type": "usage_limit_reached", "message": "The usage limit has been reached",
        "plan_type": "pro", "resets_at": 1738888888}, "headers": {
        "x-codex-primary-used-percent": "100.0", "x-codex-primary-window-minutes": 15}})
    err = error_frame(payload.encode(), "ws://example.com/v1/responses")
    assert isinstance(err, UsageLimitReached) and err.plan_type == "pro"
    assert err.status == 429 and err.headers["x-codex-primary-used-percent"] == "100.0"
    assert err.headers["x-codex-primary-window-minutes"] == "15"
    assert "usage_limit_reached" in err.body and "The usage limit has been reached" in err.body
    assert err.rate_limits.primary.used_percent == 100.0


def test_w2_non_error_payloads_are_not_wrapped_errors() -> None:
    from codexapi_plugins.wire_websocket import error_frame

    for payload in ({"type": "response.created", "response": {"id": "resp-1"}},
                    {"type": "error", "status_code": 200, "error": {}},
                    {"type": "response.output_text.delta", "delta": '"status_code": 500'}):
        assert error_frame(json.dumps(payload).encode(), "ws://example.com") is None
