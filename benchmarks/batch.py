"""``python -m benchmarks.batch [--requests N] [--concurrency C] [--dask-requests N] [--json]``

Batch throughput (issue 18): N requests through ``codexapi.batch.run`` on threads (what
``codexapi batch`` runs, results written to a JSONL file) against the loop people write by hand,
a ``ThreadPoolExecutor`` over openai-python at the same concurrency, also writing one JSON line
per result. The server runs in its own process so it does not share the clients' GIL:

- ``embedded``: ``codexapi serve`` (the scripted model, stdlib HTTP server), as the issue asks;
- ``prerendered``: ``benchmarks.server`` (the same bytes to every request), to show how much of
  the ratio the embedded server itself hides.

A "raw" row (urllib3 + one JSON parse per event, same threads) is the ceiling any client could
reach against that server: when the codexapi row is near it, the server is the bottleneck.

The Dask engine runs a smaller count (``--dask-requests``) on a LocalCluster of two worker
processes; its overhead per request is its wall time per request minus the thread engine's on
the same count and concurrency.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from codexapi import Provider, ResponsesRequest, RetryPolicy, batch

from .clients import API_KEY
from .server import BenchServer

MODEL = "gpt-5"


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """``codexapi serve --port 0`` in a child process; yields its base URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEXAPI_"))}
    proc = subprocess.Popen([sys.executable, "-m", "codexapi", "serve", "--port", "0"],
                            stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "embedded server on " in line:
                yield line.split(" on ", 1)[1].split()[0]
                break
        else:
            raise RuntimeError("codexapi serve did not start")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def codexapi_batch(url: str, n: int, concurrency: int, engine: str = "threads",
                   scheduler: Any = None) -> float:
    provider = Provider(name="bench", base_url=url, retry=RetryPolicy(max_attempts=1),
                        stream_idle_timeout=60.0)
    jobs = [(i, ResponsesRequest(model=MODEL, input=f"question {i}")) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        running = batch.run(jobs, provider, concurrency=concurrency, engine=engine,
                            scheduler=scheduler, output=os.path.join(tmp, "out.jsonl"),
                            load_entrypoints=False)
        done = sum(1 for r in running if r.ok)
        seconds = time.perf_counter() - started
    if done != n:
        raise RuntimeError(f"codexapi batch: {done} of {n} ok")
    return seconds


def openai_loop(url: str, n: int, concurrency: int) -> float:
    """The hand-written loop: a thread pool over openai-python, one JSON line per result."""
    import openai

    client = openai.OpenAI(api_key=API_KEY, base_url=url, max_retries=0, timeout=60.0)

    def one(i: int) -> dict[str, Any]:
        text = []
        response_id = usage = None
        for event in client.responses.create(model=MODEL, input=f"question {i}", stream=True):
            if event.type == "response.output_text.delta":
                text.append(event.delta)
            elif event.type == "response.completed":
                response_id = event.response.id
                usage = event.response.usage.model_dump() if event.response.usage else None
        return {"id": i, "status": "ok", "text": "".join(text), "response_id": response_id,
                "usage": usage}

    with tempfile.TemporaryDirectory() as tmp, open(os.path.join(tmp, "out.jsonl"), "w") as out:
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            for result in pool.map(one, range(n)):
                out.write(json.dumps(result) + "\n")
                out.flush()
        seconds = time.perf_counter() - started
    client.close()
    return seconds


def raw_loop(url: str, n: int, concurrency: int) -> float:
    """urllib3 + one orjson parse per event: the least any client must do."""
    import urllib3

    pool = urllib3.PoolManager(maxsize=concurrency)
    body = orjson.dumps({"model": MODEL, "input": "question", "stream": True})

    def one(_: int) -> int:
        resp = pool.request("POST", url + "/responses", body=body, preload_content=False,
                            headers={"Content-Type": "application/json"})
        events = 0
        for line in resp.read().split(b"\n"):
            if line.startswith(b"data: "):
                orjson.loads(line[6:])
                events += 1
        resp.release_conn()
        return events

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool_:
        for _ in pool_.map(one, range(n)):
            pass
    return time.perf_counter() - started


def best(fn: Callable[[], float], repeats: int) -> float:
    return min(fn() for _ in range(repeats))


def run_server(label: str, url: str, n: int, concurrency: int, repeats: int
               ) -> dict[str, Any]:
    codexapi_batch(url, min(n, 200), concurrency)  # warm: imports, connections
    openai_loop(url, min(n, 200), concurrency)
    times = {"codexapi": [], "openai": [], "raw": []}  # type: dict[str, list[float]]
    for _ in range(repeats):  # interleaved, so load on the machine hits all alike
        times["codexapi"].append(codexapi_batch(url, n, concurrency))
        times["openai"].append(openai_loop(url, n, concurrency))
        times["raw"].append(raw_loop(url, n, concurrency))
    t = {k: min(v) for k, v in times.items()}
    return {"server": label, "requests": n, "concurrency": concurrency,
            "seconds": t, "requests_per_second": {k: n / v for k, v in t.items()},
            "ratio_vs_openai": t["openai"] / t["codexapi"],
            "fraction_of_raw": t["raw"] / t["codexapi"]}


def plain_task(spec: Any, request: ResponsesRequest) -> str:
    """A Dask task as people write it by hand: one call, no shared limit or pause."""
    from codexapi.batch.spec import cached_client

    return cached_client(spec).stream(request).collect().text


def plain_dask(client: Any, url: str, n: int) -> float:
    """``client.map`` + ``as_completed``: Dask's own cost per task, for comparison."""
    import distributed

    from codexapi.batch import ClientSpec

    spec = ClientSpec(Provider(name="bench", base_url=url, retry=RetryPolicy(max_attempts=1)),
                      load_entrypoints=False)
    requests = [ResponsesRequest(model=MODEL, input=f"question {i}") for i in range(n)]
    started = time.perf_counter()
    futures = client.map(plain_task, [spec] * n, requests, pure=False)
    done = sum(1 for _, text in distributed.as_completed(futures, loop=client.loop,
                                                         with_results=True) if text)
    seconds = time.perf_counter() - started
    if done != n:
        raise RuntimeError(f"plain dask: {done} of {n} answered")
    return seconds


def run_dask(url: str, n: int, concurrency: int) -> dict[str, Any]:
    import distributed

    with distributed.LocalCluster(n_workers=2, threads_per_worker=max(1, concurrency // 2),
                                  processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        codexapi_batch(url, min(n, 50), concurrency, "dask", client)  # warm the workers
        dask_seconds = codexapi_batch(url, n, concurrency, "dask", client)
        plain_seconds = plain_dask(client, url, n)
    threads_seconds = codexapi_batch(url, n, concurrency)
    return {"requests": n, "concurrency": concurrency, "workers": 2,
            "seconds": {"dask": dask_seconds, "plain_dask": plain_seconds,
                        "threads": threads_seconds},
            "requests_per_second": {"dask": n / dask_seconds, "plain_dask": n / plain_seconds,
                                    "threads": n / threads_seconds},
            "plain_dask_overhead_ms_per_request": (plain_seconds - threads_seconds) / n * 1e3,
            "overhead_ms_per_request": (dask_seconds - threads_seconds) / n * 1e3,
            "overhead_ms_per_call_slot": (dask_seconds - threads_seconds) / n * 1e3
            * concurrency}


def table(report: dict[str, Any]) -> str:
    rows = ["| server | requests | concurrency | codexapi batch | openai-python loop | raw "
            "urllib3 | ratio vs openai | codexapi / raw |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["threads"]:
        rps = r["requests_per_second"]
        rows.append(f"| {r['server']} | {r['requests']:,} | {r['concurrency']} | "
                    f"{rps['codexapi']:,.0f} req/s | {rps['openai']:,.0f} req/s | "
                    f"{rps['raw']:,.0f} req/s | {r['ratio_vs_openai']:.2f}x | "
                    f"{r['fraction_of_raw']:.0%} |")
    d = report.get("dask")
    if d:
        rps = d["requests_per_second"]
        rows += ["", "| LocalCluster, 2 worker processes | requests | codexapi dask engine | "
                 "plain Dask tasks | codexapi threads | dask engine overhead per request |",
                 "| --- | --- | --- | --- | --- | --- |",
                 f"| embedded | {d['requests']:,} | {rps['dask']:,.0f} req/s | "
                 f"{rps['plain_dask']:,.0f} req/s | {rps['threads']:,.0f} req/s | "
                 f"{d['overhead_ms_per_request']:.1f} ms wall "
                 f"({d['overhead_ms_per_call_slot']:.0f} ms per call at concurrency "
                 f"{d['concurrency']}; plain tasks "
                 f"{d['plain_dask_overhead_ms_per_request']:.1f} ms) |"]
    ratios = [r["ratio_vs_openai"] for r in report["threads"] if r["server"] == "embedded"]
    if ratios:
        rows += ["", f"target codexapi batch >= 3x openai-python loop (embedded server): "
                 f"{min(ratios):.2f}x {'PASS' if min(ratios) >= 3 else 'MISS'}"]
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=5000,
                        help="requests per thread-engine row (0: only the Dask engine)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--dask-requests", type=int, default=1000,
                        help="requests for the Dask engine (0: skip it)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"threads": []}
    with embedded_server() as url:
        if args.requests:
            report["threads"].append(run_server("embedded", url, args.requests,
                                                args.concurrency, args.repeats))
        if args.dask_requests:
            report["dask"] = run_dask(url, args.dask_requests, args.concurrency)
    if args.requests:
        with BenchServer() as fast:
            fast.warm("responses", 3)
            report["threads"].append(run_server("prerendered", fast.url("r3"), args.requests,
                                                args.concurrency, args.repeats))
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
