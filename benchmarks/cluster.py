"""The Dask batch engine on a LocalCluster of worker processes (issue 28, target 3).

- ``dask_overhead``: N requests through ``codexapi.batch.run(engine="dask")`` against N plain
  Dask tasks that each send the same urllib3 request to the same local server
  (``client.map`` + ``as_completed``, one JSON line written and the future released per
  result, as the engine's driver does). Both run at the same concurrency on the same 2-worker
  cluster, in pairs (the order flips every turn). The overhead per request is what the engine
  adds to each call slot: ``(engine seconds - plain seconds) * concurrency / N``, the median
  over the pairs.
- ``dask_scaling``: against a server that answers in 50 ms, the engine's requests per second
  on a 2-worker cluster over a 1-worker cluster, the same threads (= concurrency) per worker;
  the median of the per-pair ratios, the two clusters used in turns; beside it the same ratio
  for plain Dask tasks, measured in the same turns.

Runs are a few hundred requests, so that what a run costs once (the engine's set-up and
tear-down, each worker's first lease) weighs as it does in a batch, not as in a handful of
calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from .cases import Case, Settings, Target
from .server import BenchServer

#: Issue 28, target 3.
MAX_OVERHEAD = 0.015
MIN_SCALING = 1.8
#: Threads (and calls at once) per worker.
PER_WORKER = 4
WAIT_MS = 50
MODEL = "gpt-5"

_pool: Any = None


def plain_call(url: str, body: bytes) -> int:
    """A plain Dask task: one urllib3 POST, the whole body read; the events it held."""
    import urllib3

    global _pool
    if _pool is None:  # one pool per worker process, as the engine keeps one Client
        _pool = urllib3.PoolManager(maxsize=PER_WORKER * 2)
    response = _pool.request("POST", url + "/responses", body=body, preload_content=False,
                             headers={"Content-Type": "application/json"})
    data = response.read()
    response.release_conn()
    if response.status != 200:
        raise RuntimeError(f"plain task: status {response.status}")
    return data.count(b"\ndata: ") + data.startswith(b"data: ")


def plain_run(client: Any, url: str, n: int, out: str) -> float:
    import distributed

    body = json.dumps({"model": MODEL, "input": "question", "stream": True}).encode()
    started = time.perf_counter()
    futures = client.map(plain_call, [url] * n, [body] * n, pure=False)
    done = 0
    with open(out, "w") as log:
        for future, events in distributed.as_completed(futures, loop=client.loop,
                                                            with_results=True):
            log.write(json.dumps({"id": future.key, "events": events}) + "\n")
            log.flush()
            # Released here, as the engine releases each future it is done with: released
            # after the clock stops, the scheduler's work would land in the next run's time.
            future.release()
            done += 1
    futures.clear()
    seconds = time.perf_counter() - started
    if done != n:
        raise RuntimeError(f"plain dask: {done} of {n} answered")
    return seconds


def engine_run(client: Any, url: str, n: int, concurrency: int, out: str) -> float:
    from codexapi import Provider, ResponsesRequest, RetryPolicy, batch

    provider = Provider(name="bench", base_url=url, retry=RetryPolicy(max_attempts=1),
                        stream_idle_timeout=60.0)
    jobs = [(i, ResponsesRequest(model=MODEL, input=f"question {i}")) for i in range(n)]
    with contextlib.suppress(FileNotFoundError):
        os.remove(out)  # a fresh output, or the run would skip what the last one did
    started = time.perf_counter()
    done = sum(1 for r in batch.run(jobs, provider, concurrency=concurrency, engine="dask",
                                    scheduler=client, output=out, load_entrypoints=False)
               if r.ok)
    seconds = time.perf_counter() - started
    if done != n:
        raise RuntimeError(f"codexapi dask engine: {done} of {n} ok")
    return seconds


@contextlib.contextmanager
def cluster(workers: int) -> Iterator[Any]:
    import distributed

    with distributed.LocalCluster(n_workers=workers, threads_per_worker=PER_WORKER,
                                  processes=True, dashboard_address=None,
                                  silence_logs=40) as local, \
            distributed.Client(local, set_as_default=False) as client:
        yield client


def in_turns(runs: dict[str, Callable[[], float]], turns: int) -> dict[str, list[float]]:
    from .startup import in_turns as turns_of

    return turns_of(runs, turns)


def overhead(s: Settings, server: BenchServer, client: Any, scratch: str) -> Case:
    turns = 2 if s.quick else 21
    n = 8 if s.quick else 200
    c = 2 * PER_WORKER
    case = Case("dask_overhead", f"Dask engine overhead ({n} requests, 2 workers x "
                f"{PER_WORKER} threads, concurrency {c}, {turns} pairs)")
    server.warm("responses", 3)
    url = server.url("r3")
    got = in_turns({"engine": lambda: engine_run(client, url, n, c,
                                                 os.path.join(scratch, "engine.jsonl")),
                    "plain": lambda: plain_run(client, url, n,
                                               os.path.join(scratch, "plain.jsonl"))}, turns)
    per = [(e - p) * c / n for e, p in zip(got["engine"], got["plain"], strict=True)]
    extra = statistics.median(per)
    te, tp = statistics.median(got["engine"]), statistics.median(got["plain"])
    case.codexapi = f"{n / te:,.0f} req/s ({te / n * c * 1e3:.1f} ms per call slot)"
    case.openai = (f"plain Dask tasks, urllib3: {n / tp:,.0f} req/s "
                   f"({tp / n * c * 1e3:.1f} ms per call slot)")
    case.ratio = f"+{extra * 1e3:.1f} ms per request (median of {turns} paired runs)"
    case.metrics = {"requests": n, "concurrency": c, "engine_s": got["engine"],
                    "plain_s": got["plain"], "overhead_s_per_request": extra}
    case.targets.append(Target(f"Dask engine overhead <= {MAX_OVERHEAD * 1e3:.0f} ms per "
                               "request", f"<= {MAX_OVERHEAD * 1e3:.0f} ms", extra,
                               extra <= MAX_OVERHEAD))
    return case


def scaling(s: Settings, server: BenchServer, one: Any, two: Any, scratch: str) -> Case:
    turns = 2 if s.quick else 21
    n = 8 if s.quick else 160
    case = Case("dask_scaling", f"Dask engine, 2 workers vs 1 ({n} requests, server answers "
                f"in {WAIT_MS} ms, {PER_WORKER} calls per worker, {turns} pairs)")
    url = server.url(f"wait{WAIT_MS}")
    out = os.path.join(scratch, "scaling.jsonl")
    # Plain Dask tasks on the same two clusters, in the same turns: how far the machine lets
    # any client scale at that moment.
    got = in_turns({"one": lambda: engine_run(one, url, n, PER_WORKER, out),
                    "two": lambda: engine_run(two, url, n, 2 * PER_WORKER, out),
                    "plain_one": lambda: plain_run(one, url, n, out),
                    "plain_two": lambda: plain_run(two, url, n, out)}, turns)
    ratio = statistics.median(o / t for o, t in zip(got["one"], got["two"], strict=True))
    plain = statistics.median(o / t for o, t in zip(got["plain_one"], got["plain_two"],
                                                    strict=True))
    t1, t2 = statistics.median(got["one"]), statistics.median(got["two"])
    case.codexapi = f"2 workers {n / t2:,.0f} req/s; 1 worker {n / t1:,.0f} req/s"
    case.openai = (f"plain Dask tasks, urllib3: {plain:.2f}x (ideal: "
                   f"{1e3 / WAIT_MS * PER_WORKER:.0f} req/s per worker)")
    case.ratio = f"{ratio:.2f}x the requests/s (median of {turns} paired ratios)"
    case.metrics = {"requests": n, "per_worker": PER_WORKER, "one_s": got["one"],
                    "two_s": got["two"], "scaling": ratio, "plain_scaling": plain,
                    "plain_one_s": got["plain_one"], "plain_two_s": got["plain_two"]}
    case.targets.append(Target(f"Dask 2 workers >= {MIN_SCALING}x 1 worker's requests/s",
                               f">= {MIN_SCALING}x", ratio, ratio >= MIN_SCALING))
    return case


def dask_cases(s: Settings, server: BenchServer, want: Callable[[str], bool],
               progress: Callable[[str], None]) -> list[Case]:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return [Case(name, name, skipped="Dask distributed is not installed")
                for name in ("dask_overhead", "dask_scaling") if want(name)]
    out = []
    with tempfile.TemporaryDirectory() as scratch, cluster(2) as two:
        if want("dask_overhead"):
            progress("dask_overhead")
            out.append(overhead(s, server, two, scratch))
        if want("dask_scaling"):
            progress("dask_scaling")
            with cluster(1) as one:
                out.append(scaling(s, server, one, two, scratch))
    return out
