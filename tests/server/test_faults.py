"""The fault suite: every injected fault, on both wires, against the embedded server.

Each case asserts the whole outcome: success after the right number of attempts with the right
delays (the Client's injectable sleep records them; nothing really waits), or the right typed
error after the right number of attempts; never duplicated text, never a hang (per-test timeout).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from conftest import SHARED

from codexapi import (
    ApiError,
    Client,
    CodexApiError,
    Completed,
    ConnectTimeout,
    ContextWindowExceeded,
    Event,
    IdleTimeout,
    InvalidRequest,
    OutputTextDelta,
    Provider,
    QuotaExceeded,
    RateLimitError,
    ResponsesRequest,
    RetryPolicy,
    ServerOverloaded,
    StreamDropped,
    StreamError,
    TransportError,
    UndecodableEvent,
    UsageNotIncluded,
    WireApi,
)
from codexapi.server import EmbeddedServer
from codexapi.server.faults import FAULT_HEADER, FAULT_ID_HEADER, FaultSpecError, parse
from codexapi_plugins import retry

pytestmark = pytest.mark.timeout(20)

WIRES = [WireApi.RESPONSES, WireApi.CHAT]
BASE = 0.05
POLICY = RetryPolicy(max_attempts=4, base_delay=BASE, max_delay=30.0)


@attrs.frozen
class Outcome:
    events: list[Event]
    error: CodexApiError | None
    slept: list[float]
    attempts: int
    fault_id: str
    prompt: str
    elapsed: float

    @property
    def text(self) -> str:
        return "".join(e.delta for e in self.events if isinstance(e, OutputTextDelta))

    @property
    def expected(self) -> str:
        return f"You said: {self.prompt}"

    def succeeded(self) -> bool:
        return self.error is None and isinstance(self.events[-1], Completed)


RUN_HEADER = "x-test-run"


def attempts_seen(server: EmbeddedServer, run_id: str) -> int:
    return sum(1 for _, _, headers, _ in list(server.requests)
               if {k.lower(): v for k, v in headers.items()}.get(RUN_HEADER) == run_id)


def run(server: EmbeddedServer, wire: WireApi, plan: str | None, *,
        policy: RetryPolicy = POLICY, idle: float = 5.0, model: str = "gpt-test",
        headers: Mapping[str, str] | None = None, lenient: bool = False) -> Outcome:
    fault_id = uuid.uuid4().hex
    prompt = f"fault case {plan} {fault_id[:8]}"
    slept: list[float] = []
    provider = Provider(name="embedded", base_url=server.base_url, wire=wire, retry=policy,
                        stream_idle_timeout=idle, skip_undecodable_events=lenient)
    sent: dict[str, str] = {RUN_HEADER: fault_id, FAULT_ID_HEADER: fault_id, **(headers or {})}
    if plan is not None:
        sent[FAULT_HEADER] = plan
    events: list[Event] = []
    error: CodexApiError | None = None
    started = time.monotonic()
    with Client(provider, load_entrypoints=False, sleep=slept.append) as client:
        try:
            with client.stream(ResponsesRequest(model=model, input=prompt),
                               headers=sent) as stream:
                for event in stream:
                    events.append(event)
        except CodexApiError as exc:
            error = exc
    return Outcome(events, error, slept, attempts_seen(server, fault_id), fault_id, prompt,
                   time.monotonic() - started)


def assert_backoff(slept: list[float], first_attempt: int = 1) -> None:
    for offset, delay in enumerate(slept):
        k = first_attempt + offset
        low, high = BASE * 2 ** (k - 1) * 0.9, BASE * 2 ** (k - 1) * 1.1
        assert low - 1e-3 <= delay < high, (k, delay)


# --- retried before the stream starts ---------------------------------------------------------


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize(("plan", "delays"), [
    ("429x2", [1.0, 1.0]),                 # default Retry-After: 1
    ("429x2:2.5", [2.5, 2.5]),             # Retry-After seconds
    ("429x1:1500ms", [1.5]),               # retry-after-ms
    ("429x1:msg0.75", [0.75]),             # no header: "Please try again in 0.75s" body
    ("429x3:3600", [30.0, 30.0, 30.0]),    # a hint beyond max_delay is capped
    ("503x1:2", [2.0]),                    # Retry-After on a 5xx is honoured too
])
def test_429_and_hinted_5xx_wait_what_the_server_says(server: EmbeddedServer, wire: WireApi,
                                                      plan: str, delays: list[float]) -> None:
    out = run(server, wire, plan)
    assert out.succeeded() and out.text == out.expected
    assert out.slept == delays
    assert out.attempts == len(delays) + 1


@pytest.mark.parametrize("wire", WIRES)
def test_http_date_retry_after(server: EmbeddedServer, wire: WireApi) -> None:
    out = run(server, wire, "429x1:date20")
    assert out.succeeded() and out.attempts == 2
    # An HTTP date has whole-second resolution: the wait is within a second of the hint.
    assert 19.0 - 0.5 <= out.slept[0] <= 20.0 + 0.5


@pytest.mark.parametrize("wire", WIRES)
def test_500s_back_off_exponentially_then_succeed(server: EmbeddedServer, wire: WireApi) -> None:
    out = run(server, wire, "500x3")
    assert out.succeeded() and out.text == out.expected and out.attempts == 4
    assert len(out.slept) == 3
    assert_backoff(out.slept)


@pytest.mark.parametrize("wire", WIRES)
def test_exhausted_5xx_raises_the_last_error_with_the_attempt_count(
        server: EmbeddedServer, wire: WireApi) -> None:
    out = run(server, wire, "502", policy=attrs.evolve(POLICY, max_attempts=3))
    assert isinstance(out.error, ApiError) and out.error.status == 502
    assert out.error.attempts == 3 and "after 3 attempts" in str(out.error)
    assert out.attempts == 3 and len(out.slept) == 2 and out.events == []


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize(("plan", "flag"), [("429", "retry_429"), ("500", "retry_5xx"),
                                            ("reset", "retry_transport")])
def test_policy_flags_switch_retries_off(server: EmbeddedServer, wire: WireApi, plan: str,
                                         flag: str) -> None:
    out = run(server, wire, plan, policy=attrs.evolve(POLICY, **{flag: False}))
    assert isinstance(out.error, ApiError | TransportError)
    assert out.attempts == 1 and out.slept == []


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
def test_other_4xx_are_never_retried(server: EmbeddedServer, wire: WireApi, status: int
                                     ) -> None:
    out = run(server, wire, f"{status}x1")
    assert isinstance(out.error, ApiError) and out.error.status == status
    assert out.error.attempts == 1 and out.attempts == 1 and out.slept == []


@pytest.mark.parametrize("wire", WIRES)
def test_reset_before_headers_is_retried(server: EmbeddedServer, wire: WireApi) -> None:
    out = run(server, wire, "resetx2")
    assert out.succeeded() and out.text == out.expected and out.attempts == 3
    assert_backoff(out.slept)


@pytest.mark.parametrize("wire", WIRES)
def test_resets_exhaust_into_a_transport_error_naming_the_attempts(
        server: EmbeddedServer, wire: WireApi) -> None:
    out = run(server, wire, "reset", policy=attrs.evolve(POLICY, max_attempts=2))
    assert type(out.error) is TransportError
    assert out.error.attempts == 2 and "after 2 attempts" in str(out.error)
    assert out.attempts == 2


@pytest.mark.parametrize("wire", WIRES)
def test_a_slow_response_head_times_out_and_is_retried(server: EmbeddedServer, wire: WireApi
                                                       ) -> None:
    out = run(server, wire, "stallheadx1:1", idle=0.25)
    assert out.succeeded() and out.text == out.expected
    assert out.attempts == 2 and len(out.slept) == 1


@pytest.mark.parametrize("wire", WIRES)
def test_mixed_failures_in_sequence(server: EmbeddedServer, wire: WireApi) -> None:
    out = run(server, wire, "429x1:0.5,500x1,resetx1")
    assert out.succeeded() and out.text == out.expected and out.attempts == 4
    assert out.slept[0] == 0.5
    assert_backoff(out.slept[1:], first_attempt=2)


# --- failures after the stream started: never retried, typed --------------------------------


@pytest.mark.parametrize("wire", WIRES)
def test_drop_mid_stream_is_a_stream_error_and_not_resent(server: EmbeddedServer,
                                                          wire: WireApi) -> None:
    out = run(server, wire, "drop@3")
    assert type(out.error) is StreamDropped and "disconnected" in str(out.error)
    assert out.attempts == 1 and out.slept == []
    assert out.events and out.expected.startswith(out.text) and out.text != out.expected


@pytest.mark.parametrize("wire", WIRES)
def test_stall_mid_stream_is_an_idle_timeout_that_closes_the_connection(
        server: EmbeddedServer, wire: WireApi) -> None:
    out = run(server, wire, "stall:1@2", idle=0.25)
    assert isinstance(out.error, IdleTimeout) and isinstance(out.error, StreamError)
    assert out.attempts == 1 and out.slept == [] and out.elapsed < 1.0
    assert out.expected.startswith(out.text)
    # The client closed its end: when the stall ends, the server's next write fails.
    deadline = time.monotonic() + 5
    while ("stall:1@2", "client gone") not in server.faults.events_for(out.fault_id):
        assert time.monotonic() < deadline, server.faults.events_for(out.fault_id)
        time.sleep(0.05)


@pytest.mark.parametrize("wire", WIRES)
def test_a_short_stall_within_the_idle_timeout_is_fine(server: EmbeddedServer, wire: WireApi
                                                       ) -> None:
    out = run(server, wire, "stall:0.2@2", idle=2.0)
    assert out.succeeded() and out.text == out.expected


@pytest.mark.parametrize("wire", WIRES)
def test_malformed_event_is_skipped_without_losing_or_repeating_text_when_lenient(
        server: EmbeddedServer, wire: WireApi) -> None:
    out = run(server, wire, "malformed@2", lenient=True)
    assert ("malformed@2", "sent") in server.faults.events_for(out.fault_id)
    assert out.succeeded() and out.text == out.expected and out.attempts == 1


@pytest.mark.parametrize("wire", WIRES)
def test_malformed_event_is_a_typed_error_by_default(server: EmbeddedServer, wire: WireApi
                                                     ) -> None:
    out = run(server, wire, "malformed@2")
    assert isinstance(out.error, UndecodableEvent) and out.attempts == 1
    assert "not valid JSON" in str(out.error) and not out.error.retryable
    assert not any(isinstance(e, Completed) for e in out.events)


@pytest.mark.parametrize("wire", WIRES)
def test_malformed_then_truncated_explains_both(server: EmbeddedServer, wire: WireApi) -> None:
    out = run(server, wire, "malformed@2,truncate", lenient=True)
    assert type(out.error) is StreamDropped
    if wire is WireApi.RESPONSES:
        assert "stream closed before response.completed" in str(out.error)
        assert "not valid JSON" in str(out.error)


@pytest.mark.parametrize("wire", WIRES)
def test_truncated_stream_is_a_stream_error(server: EmbeddedServer, wire: WireApi) -> None:
    out = run(server, wire, "truncate")
    assert type(out.error) is StreamDropped and out.attempts == 1
    assert not any(isinstance(e, Completed) for e in out.events)
    assert out.text == out.expected  # everything but the completion arrived, once


FAILURES: list[tuple[str, type[CodexApiError]]] = [
    ("context_length_exceeded", ContextWindowExceeded),
    ("insufficient_quota", QuotaExceeded),
    ("usage_not_included", UsageNotIncluded),
    ("rate_limit_exceeded=2.5", RateLimitError),
    ("server_is_overloaded", ServerOverloaded),
    ("invalid_prompt", InvalidRequest),
    ("server_error", StreamError),
]


@pytest.mark.parametrize("wire", WIRES)
@pytest.mark.parametrize(("code", "kind"), FAILURES)
def test_response_failed_codes_are_typed_errors(server: EmbeddedServer, wire: WireApi,
                                                code: str, kind: type[CodexApiError]) -> None:
    out = run(server, wire, f"failed:{code}")
    assert type(out.error) is kind, out.error
    if out.error.retryable and not out.events:
        # Nothing had reached the caller: the turn was re-sent Provider.stream_max_retries
        # (5) times, each failing the same way, then the failure was raised.
        assert out.attempts == 6 and len(out.slept) == 5
    else:
        assert out.attempts == 1 and out.slept == []
    assert not any(isinstance(e, Completed) for e in out.events)
    if kind is RateLimitError:
        assert isinstance(out.error, RateLimitError) and out.error.retry_after == 2.5
        # A caller re-sending the turn itself asks the retry plugin, which honours the hint.
        assert retry.retry_delay(POLICY, 1, out.error) == 2.5
    if kind in (ContextWindowExceeded, QuotaExceeded, UsageNotIncluded, InvalidRequest):
        assert retry.retry_delay(POLICY, 1, out.error) is None


# --- where plans come from ----------------------------------------------------------------


@pytest.mark.parametrize("wire", WIRES)
def test_plan_in_the_model_name_counted_per_session(server: EmbeddedServer, wire: WireApi
                                                    ) -> None:
    session = {FAULT_ID_HEADER: "", "session_id": uuid.uuid4().hex}
    out = run(server, wire, None, model="fault:500x1", headers=session)
    assert out.succeeded() and out.attempts == 2 and len(out.slept) == 1
    # The count belongs to the session: its next turn is not failed again...
    again = run(server, wire, None, model="fault:500x1", headers=session)
    assert again.succeeded() and again.attempts == 1 and again.slept == []
    # ...while another session gets its own first failure.
    other = run(server, wire, None, model="fault:500x1",
                headers={FAULT_ID_HEADER: "", "session_id": uuid.uuid4().hex})
    assert other.succeeded() and other.attempts == 2


@pytest.mark.parametrize("wire", WIRES)
def test_server_wide_plan(wire: WireApi) -> None:
    with EmbeddedServer(faults=["429x1:0.25", "ratelimits"]) as server:
        first = run(server, wire, None, headers={FAULT_ID_HEADER: ""})
        second = run(server, wire, None, headers={FAULT_ID_HEADER: ""})
    assert first.succeeded() and first.slept == [0.25]
    assert second.succeeded() and second.slept == []
    assert first.text == first.expected and second.text == second.expected


@pytest.mark.parametrize("wire", WIRES)
def test_bad_plan_is_a_400_naming_the_term(server: EmbeddedServer, wire: WireApi) -> None:
    out = run(server, wire, "500x1,explode")
    assert isinstance(out.error, ApiError) and out.error.status == 400
    assert "explode" in out.error.message


def test_plan_grammar() -> None:
    (f,) = parse("429x2:1500ms")
    assert (f.kind, f.status, f.times, f.arg) == ("status", 429, 2, "1500ms")
    (f,) = parse("stall:0.5@4")
    assert (f.kind, f.seconds, f.after, f.times) == ("stall", 0.5, 4, None)
    (f,) = parse("failed:rate_limit_exceeded=3")
    assert (f.kind, f.arg, f.seconds) == ("failed", "rate_limit_exceeded", 3.0)
    assert [x.kind for x in parse(["resetx1, drop", "truncate"])] == ["reset", "drop",
                                                                      "truncate"]
    for bad in ("600", "stall:forever", "429x", "failed:Bad-Code", "nope", "429:soon"):
        with pytest.raises(FaultSpecError):
            parse(bad)


def test_concurrent_fault_ids_do_not_share_counts(server: EmbeddedServer) -> None:
    import threading

    outcomes: list[Outcome] = []
    lock = threading.Lock()

    def work() -> None:
        out = run(server, WireApi.RESPONSES, "500x2")
        with lock:
            outcomes.append(out)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert len(outcomes) == 8
    for out in outcomes:
        assert out.succeeded() and out.attempts == 3 and out.text == out.expected


def test_max_retry_delay_error_against_the_header(server: EmbeddedServer) -> None:
    """The number reported for issue 6: how far a slept delay is from the server's hint."""
    cases: list[tuple[str, float]] = [("429x1:1", 1.0), ("429x1:2.5", 2.5),
                                      ("429x1:250ms", 0.25), ("429x1:msg1.5", 1.5),
                                      ("503x1:4", 4.0), ("429x1:0.01", 0.01)]
    errors: dict[str, float] = {}
    for wire in WIRES:
        for plan, hint in cases:
            out = run(server, wire, plan)
            assert out.succeeded()
            errors[f"{wire}:{plan}"] = abs(out.slept[0] - hint)
    worst = max(errors.values())
    print(f"\nmax retry-delay error vs header: {worst:.6f} s over {len(errors)} cases")
    assert worst < 1e-9


def test_connect_timeout_is_retried_then_named() -> None:
    import contextlib
    import socket

    # A listener whose accept queue is full drops new SYNs: connecting hangs until timeout.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        s = socket.socket()
        s.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            s.connect(("127.0.0.1", port))
        fillers.append(s)
    time.sleep(0.05)
    slept: list[float] = []
    provider = Provider(base_url=f"http://127.0.0.1:{port}/v1", connect_timeout=0.2,
                        retry=RetryPolicy(max_attempts=2, base_delay=0.0))
    try:
        with Client(provider, load_entrypoints=False, sleep=slept.append) as client, \
                pytest.raises(ConnectTimeout) as info:
            client.stream(ResponsesRequest(model="m", input="x"))
    finally:
        for s in fillers:
            s.close()
        listener.close()
    assert isinstance(info.value, TransportError) and info.value.attempts == 2
    assert "timed out connecting" in str(info.value) and "after 2 attempts" in str(info.value)
    assert slept == [0.0]


def test_serve_cli_takes_fault_plans(capsys: pytest.CaptureFixture[str]) -> None:
    from codexapi.cli.commands import build_parser, main

    args = build_parser().parse_args(["serve", "--fault", "429x2", "--fault", "drop@3"])
    assert args.fault == ["429x2", "drop@3"]
    assert main(["serve", "--port", "0", "--fault", "429x1,explode"]) == 2
    assert "unknown fault 'explode'" in capsys.readouterr().err


@pytest.mark.shared("real-cassettes")
def test_faults_apply_to_a_served_cassette() -> None:

    from codexapi.testing.formats import load_interactions
    from codexapi.testing.player import CassettePlayer

    path = SHARED / "real-cassettes" / "simonw-llm" / "test_responses_basic_streaming.yaml"
    recorded = [e["delta"] for e in load_interactions(path)[0].events()
                if e.get("type") == "response.output_text.delta"]
    with EmbeddedServer(faults="503x1:0.5") as server:
        server.httpd.responder = CassettePlayer.from_file(path)
        out = run(server, WireApi.RESPONSES, None, headers={FAULT_ID_HEADER: ""})
        assert out.succeeded() and out.slept == [0.5] and out.attempts == 2
        assert out.text == "".join(recorded) != ""
        dropped = run(server, WireApi.RESPONSES, "drop@4")
        assert type(dropped.error) is StreamDropped and dropped.attempts == 1
        assert out.text.startswith(dropped.text)


@attrs.define
class RecordingConnection:
    """The faults' whole view of an exchange (faults.Connection), with no socket behind it."""

    wire: str = "responses"
    headers: Mapping[str, str] = attrs.Factory(dict)
    body: object = None
    stream_faults: Any = None
    sent: list[bytes] = attrs.Factory(list)
    actions: list[str] = attrs.Factory(list)

    def send_error(self, status: int, message: str, code: str | None = None,
                   err_type: str = "invalid_request_error",
                   headers: Mapping[str, str] | None = None) -> None:
        self.actions.append(f"error {status} {dict(headers or {})}")

    def reset(self) -> None:
        self.actions.append("reset")

    def send_message(self, data: bytes) -> None:
        self.sent.append(data)

    def drop(self) -> None:
        self.actions.append("drop")

    def encode(self, event: Mapping[str, object]) -> bytes:
        return json.dumps(event).encode()

    def malformed(self) -> bytes:
        return b"{"


@pytest.mark.parametrize(("plan", "sent", "actions"), [
    ("drop@2", [b"e0", b"e1"], ["drop"]),
    ("malformed@1", [b"e0", b"{", b"e1", b"e2", b"done"], []),
    ("truncate", [b"e0", b"e1", b"e2"], []),
    ("429:2", [], ["error 429 {'Retry-After': '2'}"]),
    ("reset", [], ["reset"]),
])
def test_faults_act_on_events_through_the_connection_interface(
        plan: str, sent: list[bytes], actions: list[str]) -> None:
    from codexapi.server.faults import FaultInjector

    conn = RecordingConnection(headers={FAULT_HEADER: plan})
    injector = FaultInjector()
    if not injector.intercept(conn):
        assert conn.stream_faults is not None
        for i, data in enumerate([b"e0", b"e1", b"e2", b"done"]):
            conn.stream_faults.write(conn, data, final=i == 3)
    assert (conn.sent, conn.actions) == (sent, actions)


def test_a_failure_fault_is_an_event_in_the_connections_own_framing() -> None:
    from codexapi.server.faults import FaultInjector

    conn = RecordingConnection(headers={FAULT_HEADER: "failed:insufficient_quota@1"})
    assert not FaultInjector().intercept(conn)
    for data in (b"e0", b"e1"):
        conn.stream_faults.write(conn, data)
    first, failure = conn.sent
    event = json.loads(failure)
    assert first == b"e0" and event["type"] == "response.failed"
    assert event["response"]["error"]["code"] == "insufficient_quota"
