"""The Dask engine on a LocalCluster of two worker processes, against the embedded server:
results stream back and are written by the driver, the Semaphore caps calls cluster-wide (a
lowered limit too), workers keep their leases from call to call, a 429 pauses every worker (a
distributed.Variable), and a worker killed mid-run has its calls redone with no id written
twice."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
import distributed
import pytest
from support.batch_helpers import (
    AnswerFirstHoldRest,
    FirstIs429,
    HoldAfterPause,
    HoldUntilFull,
    PeakConcurrency,
    UsageLimit,
    ids,
    lines,
    write_input,
)

from codexapi import Provider, ResponsesRequest, RetryPolicy, batch
from codexapi.server import EmbeddedServer


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    # Leases of a killed worker come back after lease-timeout: short here, so the kill test
    # does not wait 30 s for them.
    leases = {"distributed.scheduler.locks.lease-timeout": "2s",
              "distributed.scheduler.locks.lease-validation-interval": "0.5s"}
    with dask.config.set(leases), distributed.LocalCluster(
            n_workers=2, threads_per_worker=3, processes=True, dashboard_address=None,
            worker_dashboard_address=None, silence_logs=40) as local, \
            distributed.Client(local, set_as_default=False) as client:
        yield client


@pytest.fixture
def own_server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as srv:
        yield srv


def _clients_built() -> int:
    from codexapi.batch import spec

    return len(spec._clients)


def run(items: Any, server: EmbeddedServer, cluster: Any, **kw: Any) -> batch.BatchRun:
    provider = Provider(name="embedded", base_url=server.base_url,
                        retry=RetryPolicy(max_attempts=2, base_delay=0.01),
                        stream_idle_timeout=20.0)
    return batch.run(items, provider, engine="dask", scheduler=cluster,
                     load_entrypoints=False, **kw)


def test_results_come_back_and_only_the_driver_writes(own_server: EmbeddedServer,
                                                     cluster: Any, tmp_path: Path) -> None:
    peak = PeakConcurrency()
    own_server.httpd.responder = peak
    src = write_input(tmp_path / "in.jsonl", 24, model="fault:stall:0.05@1")
    out = tmp_path / "out.jsonl"
    results = list(run(src, own_server, cluster, output=out, concurrency=3))
    assert sorted(r.id for r in results) == sorted(f"q{i}" for i in range(24))
    assert all(r.ok and r.text.startswith("You said: question") for r in results)
    assert sorted(ids(out)) == sorted(r.id for r in results)
    # Six worker threads, but the run's Semaphore lets three calls out at a time.
    assert peak.calls == 24 and 1 < peak.peak <= 3
    # Each worker process built its own Client from the picklable ClientSpec.
    assert sorted(cluster.run(_clients_built).values()) == [1, 1]
    assert list(run(src, own_server, cluster, output=out)) == []  # resumed: all done


def test_a_429_pauses_every_worker(own_server: EmbeddedServer, cluster: Any) -> None:
    limiter = FirstIs429(retry_after=2.0)
    own_server.httpd.responder = limiter
    items = [(i, ResponsesRequest(model="fault:stall:0.1@1", input=f"n{i}"))
             for i in range(16)]
    running = run(items, own_server, cluster, concurrency=4)
    results = list(running)
    assert sorted(r.id for r in results) == list(range(16)) and all(r.ok for r in results)
    assert limiter.limited_at is not None
    after = [t - limiter.limited_at for t in limiter.arrivals]
    assert not [t for t in after if 0.6 < t < 1.8], after
    assert len(after) == 16 and running.summary.rate_limited == 1


def test_a_lower_limit_holds_cluster_wide_once_the_pause_is_over(
        own_server: EmbeddedServer, cluster: Any) -> None:
    # Up to six calls at once (two workers, three threads each); the first 429 halves the
    # limit to three. While the pause lasts the driver takes three leases back (the workers
    # return the ones their calls gave back instead of keeping them), so once it is over no
    # more than three calls are in flight, though tasks are waiting on both workers.
    gate = HoldAfterPause(retry_after=1.0, n=4, hold=1.0)
    own_server.httpd.responder = gate
    items = [(i, ResponsesRequest(model="m", input=f"n{i}")) for i in range(12)]
    running = run(items, own_server, cluster, concurrency=6)
    results = list(running)
    assert sorted(r.id for r in results) == list(range(12)) and all(r.ok for r in results)
    assert running.summary.rate_limited == gate.rejected >= 1
    assert running.summary.lowest_concurrency == 3
    assert 1 <= gate.peak_after <= 3, gate.peak_after


def _semaphore_acquires(cluster: Any) -> dict[str, int]:
    metrics = cluster.cluster.scheduler.extensions["semaphores"].metrics
    return {name: n for name, n in metrics["acquire_total"].items()
            if str(name).startswith("codexapi-batch-")}


def _runs_kept() -> int:
    from codexapi.batch import dask_engine

    return len(dask_engine._runs)


def test_workers_keep_their_leases_between_calls_and_return_them_at_the_end(
        own_server: EmbeddedServer, cluster: Any, recwarn: pytest.WarningsRecorder) -> None:
    # A worker hands the lease a call gave back to its next call: 30 calls at three at a time
    # cost a few round trips to the scheduler's Semaphore, not 30.
    acquires: list[dict[str, int]] = []
    peak = PeakConcurrency()

    def counting(ex: Any) -> bool:
        acquires.append(_semaphore_acquires(cluster))
        return peak(ex)

    own_server.httpd.responder = counting
    items = [(i, ResponsesRequest(model="fault:stall:0.02@1", input=f"n{i}"))
             for i in range(30)]
    assert all(r.ok for r in run(items, own_server, cluster, concurrency=3))
    assert peak.calls == 30 and peak.peak <= 3
    most = max(n for seen in acquires for n in seen.values())
    assert most <= 12, most
    # At the end every lease went back before the Semaphore closed (Dask warns otherwise),
    # and no worker keeps anything of the run.
    assert not [w for w in recwarn if "unreleased leases" in str(w.message)]
    assert sorted(cluster.run(_runs_kept).values()) == [0, 0]


def _run_semaphores(cluster: Any) -> dict[str, Any]:
    """What the scheduler still keeps of the runs' Semaphores: leases held, acquires waiting,
    registrations (the Semaphore is not closed)."""
    semaphores = cluster.cluster.scheduler.extensions["semaphores"]

    def ours(table: Any) -> dict[str, Any]:
        return {name: value for name, value in table.items()
                if str(name).startswith("codexapi-batch-") and value}

    return {"held": ours(semaphores.leases), "waiting": ours(semaphores.metrics["pending"]),
            "open": ours(semaphores.max_leases)}


def _semaphore_noise(recwarn: pytest.WarningsRecorder,
                     caplog: pytest.LogCaptureFixture) -> list[str]:
    warned = [str(w.message) for w in recwarn if "leases" in str(w.message)]
    logged = [r.getMessage() for r in caplog.records if r.name == "distributed.semaphore"]
    return warned + logged


def test_leaving_a_run_with_calls_in_flight_leaves_no_lease_behind(
        own_server: EmbeddedServer, cluster: Any, recwarn: pytest.WarningsRecorder,
        caplog: pytest.LogCaptureFixture) -> None:
    # The driver leaves the run (an error, Ctrl-C, a break) while four calls hold the four
    # leases and two more tasks wait for one at the scheduler. The Semaphore must close with
    # none held or awaited (Dask warns "unreleased leases" / "pending leases" otherwise, and
    # a waiting acquire would hold its worker thread until the worker stops), and the calls
    # that end after the close must give nothing back to the closed Semaphore.
    caplog.set_level(logging.WARNING, logger="distributed.semaphore")
    gate = AnswerFirstHoldRest(4)
    own_server.httpd.responder = gate
    items = [(i, ResponsesRequest(model="m", input=f"n{i}")) for i in range(12)]
    running = run(items, own_server, cluster, concurrency=4)
    try:
        assert next(running).ok
        assert gate.full.wait(30)
        time.sleep(0.3)  # the two other tasks are at the scheduler, waiting for a lease
        started = time.monotonic()
        running.close()
        closing = time.monotonic() - started
    finally:
        gate.release.set()
    assert closing < 5.0, closing  # the calls in flight were not waited for
    assert _run_semaphores(cluster) == {"held": {}, "waiting": {}, "open": {}}
    deadline = time.monotonic() + 10
    while gate.ended < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gate.ended == 4
    time.sleep(0.3)  # their leases would be given back now
    assert _semaphore_noise(recwarn, caplog) == []
    assert sorted(cluster.run(_runs_kept).values()) == [0, 0]
    assert gate.calls == 5  # no task of the closed run started a call
    # Every worker thread is free for the next run.
    own_server.httpd.responder = None
    more = [(i, ResponsesRequest(model="m", input=f"n{i}")) for i in range(6)]
    assert all(r.ok for r in run(more, own_server, cluster, concurrency=6))


def test_usage_limit_stops_the_cluster_and_a_rerun_carries_on(
        own_server: EmbeddedServer, cluster: Any, tmp_path: Path) -> None:
    own_server.httpd.responder = UsageLimit()
    src = write_input(tmp_path / "in.jsonl", 16, special={3: "limit"})
    out = tmp_path / "out.jsonl"
    with pytest.raises(batch.BatchStopped) as stopped:
        for _ in run(src, own_server, cluster, output=out, concurrency=2):
            pass
    assert stopped.value.resets_at is not None and stopped.value.left > 0
    first = ids(out)
    assert "q3" not in first and len(first) < 16
    own_server.httpd.responder = None
    src = write_input(tmp_path / "in.jsonl", 16)
    rest = [r.id for r in run(src, own_server, cluster, output=out)]
    assert "q3" in rest and not set(rest) & set(first)
    assert sorted(ids(out)) == sorted(f"q{i}" for i in range(16))


# Last in the module: the cluster is one worker short while its nanny restarts it.
def test_a_worker_killed_mid_run_has_its_calls_redone(
        own_server: EmbeddedServer, cluster: Any, tmp_path: Path,
        recwarn: pytest.WarningsRecorder, caplog: pytest.LogCaptureFixture) -> None:
    # Six calls at once fill all six worker threads (three per process), so the worker
    # killed has three calls in flight for certain.
    caplog.set_level(logging.WARNING, logger="distributed.semaphore")
    gate = HoldUntilFull(6)
    own_server.httpd.responder = gate
    src = write_input(tmp_path / "in.jsonl", 30)
    out = tmp_path / "out.jsonl"
    victim = next(iter(cluster.run(os.getpid).values()))

    def kill() -> None:
        if gate.full.wait(30):
            os.kill(victim, signal.SIGKILL)
            time.sleep(0.2)
        gate.release.set()

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        seen = [r.id for r in run(src, own_server, cluster, output=out, concurrency=6)]
    finally:
        gate.release.set()
        killer.join(10)
    assert gate.full.is_set()
    assert sorted(seen) == sorted(f"q{i}" for i in range(30))
    written = ids(out)
    assert len(written) == len(set(written)) == 30  # no id written twice
    assert all(line["status"] == "ok" for line in lines(out))
    calls = sum(1 for _, path, _, _ in own_server.requests if path == "/responses")
    assert calls >= 33  # the dead worker's three calls were sent again elsewhere
    # The dead worker's three leases were released at the close, not left to Dask's lease
    # timeout after the Semaphore closed (a "remain unreleased leases" warning).
    assert _run_semaphores(cluster) == {"held": {}, "waiting": {}, "open": {}}
    assert _semaphore_noise(recwarn, caplog) == []
