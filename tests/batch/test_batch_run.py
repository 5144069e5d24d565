"""codexapi.batch.run on the thread engine, against the embedded server: results, resume,
--retry-failed, torn lines, the shared pause on a 429, the usage-limit stop, the adaptive
limit."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.batch_helpers import (
    FirstIs429,
    PeakConcurrency,
    UsageLimit,
    ids,
    lines,
    model_calls,
    write_input,
)

from codexapi import Provider, ResponsesRequest, RetryPolicy, batch
from codexapi.batch.engine import BatchStopped
from codexapi.batch.limiter import AdaptiveLimit, window_nearly_used
from codexapi.batch.results import outcome_of_error
from codexapi.errors import ApiError, ConfigError
from codexapi.events import RateLimitSnapshot, RateLimitWindow
from codexapi.server import EmbeddedServer


@pytest.fixture
def own_server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as srv:
        yield srv


def provider(server: EmbeddedServer) -> Provider:
    return Provider(name="embedded", base_url=server.base_url,
                    retry=RetryPolicy(max_attempts=2, base_delay=0.01),
                    stream_idle_timeout=10.0)


def run(requests: object, server: EmbeddedServer, **kw: object) -> batch.BatchRun:
    kw.setdefault("load_entrypoints", False)
    return batch.run(requests, provider(server), **kw)  # type: ignore[arg-type]


def test_results_stream_back_and_are_written(server: EmbeddedServer, tmp_path: Path) -> None:
    src = write_input(tmp_path / "in.jsonl", 30)
    out = tmp_path / "out.jsonl"
    running = run(src, server, output=out, concurrency=4)
    got = {r.id: r for r in running}
    assert set(got) == {f"q{i}" for i in range(30)}
    assert got["q7"].ok and got["q7"].text == "You said: question 7"
    assert got["q7"].response_id and got["q7"].items[0]["type"] == "message"
    written = {line["id"]: line for line in lines(out)}
    assert written["q7"] == got["q7"].to_json()
    assert set(written["q7"]) == {"id", "status", "text", "items", "usage", "response_id",
                                  "error", "base_url"}
    assert written["q7"]["base_url"] == server.base_url
    summary = running.summary
    assert (summary.ok, summary.failed, summary.total) == (30, 0, 30)
    assert summary.input_tokens == sum(r.usage["input_tokens"] for r in got.values()
                                       if r.usage)
    assert summary.output_tokens > 0 and summary.requests_per_second > 0


def test_python_items_and_pairs(server: EmbeddedServer) -> None:
    items = [("a", ResponsesRequest(model="m", input="one")),
             {"id": 2, "request": {"model": "m", "input": "two"}}]
    assert sorted((str(r.id), r.text) for r in run(items, server)) == [
        ("2", "You said: two"), ("a", "You said: one")]


def test_rerun_skips_ok_ids_and_retry_failed_runs_errors_again(
        own_server: EmbeddedServer, tmp_path: Path) -> None:
    src = write_input(tmp_path / "in.jsonl", 6, special={2: "bad"})
    out = tmp_path / "out.jsonl"
    # Model "bad" is refused by a test-local responder: a 400, never retried.
    own_server.httpd.responder = lambda ex: bool(
        isinstance(ex.body, dict) and ex.body.get("model") == "bad"
        and ex.send_error(400, "no such model", "model_not_found") is None)
    assert sorted(r.status for r in run(src, own_server, output=out)) == ["error"] + ["ok"] * 5
    failed = next(line for line in lines(out) if line["id"] == "q2")
    # A 400 for an unknown model: the crate's ModelUnavailable (an ApiError too).
    assert (failed["error"]["type"], failed["error"]["status"]) == ("ModelUnavailable", 400)
    assert failed["error"]["message"].startswith("api error 400: no such model")
    calls = model_calls(own_server.requests)
    # A plain rerun sends nothing: ok ids are done, error ids stay as they are.
    assert list(run(src, own_server, output=out)) == []
    assert model_calls(own_server.requests) == calls
    # --retry-failed sends only the failed id again; the file keeps one line per id.
    own_server.httpd.responder = None
    again = run(src, own_server, output=out, retry_failed=True)
    assert [(r.id, r.status) for r in again] == [("q2", "ok")]
    assert again.summary.skipped == 5
    assert sorted(ids(out)) == sorted(f"q{i}" for i in range(6))
    assert all(line["status"] == "ok" for line in lines(out))


def test_a_torn_last_line_is_cut_and_its_job_redone(server: EmbeddedServer,
                                                   tmp_path: Path) -> None:
    src = write_input(tmp_path / "in.jsonl", 5)
    out = tmp_path / "out.jsonl"
    list(run(src, server, output=out))
    kept = out.read_bytes().splitlines(keepends=True)
    # As if the process died in the middle of writing the last result.
    out.write_bytes(b"".join(kept[:3]) + kept[3][:25])
    redone = [r.id for r in run(src, server, output=out)]
    assert len(redone) == 2
    assert sorted(ids(out)) == sorted(f"q{i}" for i in range(5))
    assert out.read_bytes().startswith(b"".join(kept[:3]))


def test_a_429_pauses_every_worker_then_the_call_is_sent_again(
        own_server: EmbeddedServer) -> None:
    limiter = FirstIs429(retry_after=1.0)
    own_server.httpd.responder = limiter
    # Each call takes 0.1 s (a stall after its first event), so without the pause the other
    # workers would keep sending during the Retry-After second.
    items = [(i, ResponsesRequest(model="fault:stall:0.1@1", input=f"n{i}"))
             for i in range(12)]
    running = run(items, own_server, concurrency=4)
    results = list(running)
    assert sorted(r.id for r in results) == list(range(12)) and all(r.ok for r in results)
    assert limiter.limited_at is not None
    after = [t - limiter.limited_at for t in limiter.arrivals]
    # Calls already on the wire when the 429 came may land just after it; then nobody sends
    # until Retry-After has passed.
    assert not [t for t in after if 0.2 < t < 0.9], after
    assert len(after) == 12  # the limited call was sent again, once
    assert running.summary.rate_limited == 1
    assert running.summary.lowest_concurrency == 2  # halved on the 429


def test_usage_limit_stops_cleanly_and_a_rerun_carries_on(own_server: EmbeddedServer,
                                                         tmp_path: Path) -> None:
    own_server.httpd.responder = UsageLimit(resets_in=3600)
    src = write_input(tmp_path / "in.jsonl", 20, special={6: "limit"})
    out = tmp_path / "out.jsonl"
    running = run(src, own_server, output=out, concurrency=1)
    seen = []
    with pytest.raises(BatchStopped) as stopped:
        for result in running:
            seen.append(result.id)
    resets = stopped.value.resets_at
    assert resets is not None and abs(
        (resets - dt.datetime.now(dt.UTC)).total_seconds() - 3600) < 60
    assert "usage limit reached" in str(stopped.value) and stopped.value.left > 0
    assert running.summary.stopped == "usage_limit"
    written = ids(out)
    assert written == seen == [f"q{i}" for i in range(6)]
    calls = model_calls(own_server.requests)
    assert calls == 7  # stopped sending at the limit: what was queued never went out
    # Once the limit has reset, the same batch finishes what was left, each id once.
    own_server.httpd.responder = None
    src = write_input(tmp_path / "in.jsonl", 20)
    rest = [r.id for r in run(src, own_server, output=out)]
    assert "q6" in rest and not set(rest) & set(written)
    assert sorted(ids(out)) == sorted(f"q{i}" for i in range(20))


def test_usage_limit_is_recognised_from_the_body_or_the_typed_error() -> None:
    body = json.dumps({"error": {"type": "usage_limit_reached", "resets_at": 1893456000}})
    outcome = outcome_of_error("x", ApiError(429, "limit", body, code=None))
    assert outcome.kind == "usage_limit"
    assert outcome.resets_at == dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

    class UsageLimitReached(ApiError):  # the client's typed error, by name
        resets_at = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)

    typed = outcome_of_error("x", UsageLimitReached(429, "limit"))
    assert (typed.kind, typed.resets_at) == ("usage_limit", UsageLimitReached.resets_at)
    assert outcome_of_error("x", ApiError(429, "slow down", retry_after=2.0)).kind == \
        "rate_limited"
    assert outcome_of_error("x", ApiError(500, "boom")).kind == "error"


def test_adaptive_limit_backs_off_and_grows_back() -> None:
    now = [0.0]
    limit = AdaptiveLimit(8, cooldown=1.0, clock=lambda: now[0])
    limit.rate_limited()
    limit.rate_limited()  # the same burst: one decrease per cooldown
    assert limit.current == 4
    now[0] = 2.0
    limit.rate_limited()
    assert limit.current == 2 and limit.lowest == 2
    for _ in range(2 + 3 + 4 + 5 + 6 + 7):
        limit.succeeded(None)
    assert limit.current == 8
    limit.succeeded(None)
    assert limit.current == 8  # never above the ceiling
    now[0] = 4.0
    nearly = RateLimitSnapshot(primary=RateLimitWindow(used_percent=95.0))
    limit.succeeded(nearly)
    assert limit.current == 6


def test_nearly_used_windows() -> None:
    assert not window_nearly_used(None)
    assert window_nearly_used(RateLimitSnapshot(secondary=RateLimitWindow(90.0)))
    assert not window_nearly_used(RateLimitSnapshot(primary=RateLimitWindow(42.5)))
    low = {"x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "10"}
    assert window_nearly_used(RateLimitSnapshot(openai=low))
    assert not window_nearly_used(RateLimitSnapshot(openai={
        "x-ratelimit-limit-requests": "500", "x-ratelimit-remaining-requests": "499"}))


def test_rate_limit_headers_reach_the_limit(own_server: EmbeddedServer) -> None:
    # The server's fixed fault headers (42.5% used, 499 of 500 requests left) are no reason
    # to slow down: the limit stays at the ceiling.
    items = [(i, ResponsesRequest(model="fault:ratelimits", input="x")) for i in range(8)]
    running = run(items, own_server, concurrency=4)
    assert len(list(running)) == 8 and running.summary.lowest_concurrency == 4


def test_bad_arguments_are_config_errors(server: EmbeddedServer) -> None:
    with pytest.raises(ConfigError, match="unknown batch engine 'spark'"):
        run([], server, engine="spark")
    with pytest.raises(ConfigError, match="concurrency must be at least 1"):
        run([], server, concurrency=0)
    with pytest.raises(ConfigError, match="must be a Provider or a ClientSpec"):
        batch.run([], "http://127.0.0.1:1/v1")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="plugin 'no_such_module' cannot be imported"):
        batch.run([], batch.ClientSpec(provider(server), plugins=["no_such_module"]))


def test_import_codexapi_loads_no_batch_dask_or_progress_library() -> None:
    code = ("import sys, codexapi; print(sorted(m for m in ('codexapi.batch', 'dask', "
            "'distributed', 'tqdm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=30)
    assert out.stdout.strip() == "[]"


def test_calls_in_flight_stay_within_the_concurrency(own_server: EmbeddedServer) -> None:
    peak = PeakConcurrency()
    own_server.httpd.responder = peak
    items = [(i, ResponsesRequest(model="fault:stall:0.03@1", input="x")) for i in range(24)]
    assert len(list(run(items, own_server, concurrency=3))) == 24
    assert peak.calls == 24 and 1 < peak.peak <= 3


def test_slots_follow_a_lowered_limit() -> None:
    import threading
    import time

    from codexapi.batch.limiter import LocalSlots

    slots = LocalSlots(4)
    slots.set_limit(1)
    active, most = [0], [0]
    lock = threading.Lock()

    def work() -> None:
        with slots:
            with lock:
                active[0] += 1
                most[0] = max(most[0], active[0])
            time.sleep(0.02)
            with lock:
                active[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert most[0] == 1


def test_a_nearly_used_window_lowers_the_limit(own_server: EmbeddedServer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from codexapi.server import faults

    monkeypatch.setitem(faults.RATE_LIMIT_HEADERS, "x-codex-primary-used-percent", "96")
    items = [(i, ResponsesRequest(model="fault:ratelimits", input="x")) for i in range(12)]
    running = run(items, own_server, concurrency=4)
    assert len(list(running)) == 12
    assert running.summary.rate_limited == 0 and running.summary.lowest_concurrency == 3


def test_progress_bar_and_plain_lines() -> None:
    import io

    from codexapi.batch.engine import Summary
    from codexapi.batch.progress import Progress
    from codexapi.batch.results import BatchResult

    summary = Summary(total=2)
    bar = io.StringIO()
    progress = Progress(summary, bar, "bar")
    for result in (BatchResult(1, "ok"), BatchResult(2, "error")):
        summary.count(result)
        progress.update(result)
    progress.close()
    shown = bar.getvalue()
    assert "batch" in shown and "2/2" in shown and "req/s" in shown and "failed=1" in shown
    plain = io.StringIO()
    progress = Progress(summary, plain, "lines", interval=3600)
    progress.close()
    assert plain.getvalue().startswith("batch: 2/2 done, 1 failed, ")


def test_a_rate_limit_inside_the_stream_is_sent_again(own_server: EmbeddedServer) -> None:
    # One response.failed rate_limit_exceeded ("try again in 0.2s") among the calls.
    model = "fault:failedx1:rate_limit_exceeded=0.2"
    items = [(i, ResponsesRequest(model=model, input=f"n{i}")) for i in range(6)]
    running = run(items, own_server, concurrency=2)
    results = list(running)
    assert sorted(r.id for r in results) == list(range(6)) and all(r.ok for r in results)
    assert running.summary.rate_limited == 1 and model_calls(own_server.requests) == 7


def test_a_line_can_name_another_provider(server: EmbeddedServer, own_server: EmbeddedServer,
                                          tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "request": {"model": "m", "input": "a"}}\n'
                   '{"id": 2, "request": {"model": "m", "input": "b"}, "provider": "other"}\n')
    before = model_calls(server.requests)
    results = list(run(src, server, providers={"other": provider(own_server)}))
    assert sorted(r.text for r in results) == ["You said: a", "You said: b"]
    assert model_calls(server.requests) - before == 1
    assert model_calls(own_server.requests) == 1
    assert own_server.requests[-1][3]["input"][0]["content"][0]["text"] == "b"
