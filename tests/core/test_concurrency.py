"""One shared Client, many threads, many streams: all complete, none sees another's text."""

from __future__ import annotations

import threading
import time

import pytest

from codexapi import (
    Client,
    Completed,
    OutputTextDelta,
    Provider,
    ResponsesRequest,
    RetryPolicy,
    WireApi,
)
from codexapi.server import EmbeddedServer

THREADS = 16
STREAMS = 50


@pytest.mark.timeout(120)
@pytest.mark.parametrize("wire", [WireApi.RESPONSES, WireApi.CHAT])
def test_shared_client_16_threads_x_50_streams(server: EmbeddedServer, wire: WireApi) -> None:
    provider = Provider(name="embedded", base_url=server.base_url, wire=wire,
                        retry=RetryPolicy(max_attempts=1), stream_idle_timeout=30.0)
    failures: list[str] = []
    done = [0] * THREADS
    start = threading.Barrier(THREADS + 1)

    def work(client: Client, t: int) -> None:
        start.wait(30)
        try:
            for k in range(STREAMS):
                # Distinct prompts of distinct lengths: any cross-talk changes the text.
                prompt = f"thread {t} stream {k} " + "x" * (1 + (t * 7 + k) % 13)
                text = []
                completed = 0
                with client.stream(ResponsesRequest(model="m", input=prompt)) as events:
                    for event in events:
                        if isinstance(event, OutputTextDelta):
                            text.append(event.delta)
                        elif isinstance(event, Completed):
                            completed += 1
                if "".join(text) != f"You said: {prompt}" or completed != 1:
                    failures.append(f"{t}/{k}: {''.join(text)!r} completed={completed}")
                done[t] += 1
        except Exception as exc:  # reported below with the thread that saw it
            failures.append(f"{t}: {type(exc).__name__}: {exc}")

    with Client(provider, load_entrypoints=False) as client:
        threads = [threading.Thread(target=work, args=(client, t), daemon=True)
                   for t in range(THREADS)]
        for thread in threads:
            thread.start()
        start.wait(30)
        began = time.perf_counter()
        for thread in threads:
            thread.join(100)
        elapsed = time.perf_counter() - began
    assert not any(thread.is_alive() for thread in threads), "a stream hung"
    assert failures == []
    assert done == [STREAMS] * THREADS
    total = THREADS * STREAMS
    print(f"\n{wire}: {total} streams from {THREADS} threads on one Client in {elapsed:.2f}s "
          f"= {total / elapsed:.0f} streams/s")


@pytest.mark.parametrize("wire", [WireApi.RESPONSES, WireApi.CHAT])
def test_completed_streams_return_their_connection_to_the_pool(wire: WireApi) -> None:
    with EmbeddedServer() as server:
        provider = Provider(name="embedded", base_url=server.base_url, wire=wire,
                            retry=RetryPolicy(max_attempts=1))
        with Client(provider, load_entrypoints=False) as client:
            for k in range(20):
                result = client.stream(ResponsesRequest(model="m", input=f"n{k}")).collect()
                assert result.text == f"You said: n{k}"
            assert server.httpd.connections_accepted == 1
            # A stream left early cannot be reused: the server must see it closed.
            with client.stream(ResponsesRequest(model="m", input="a b c d e f")) as events:
                next(iter(events))
            client.stream(ResponsesRequest(model="m", input="again")).collect()
            assert server.httpd.connections_accepted == 2
