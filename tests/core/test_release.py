"""Streams release their connection as soon as they are unreachable: no reference cycle, so
no waiting for the cyclic garbage collector (tested with it disabled), even under 32 threads
abandoning streams mid-turn; and no file descriptor is left behind."""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Iterator

import pytest
from conftest import make_client, make_request

from codexapi.server import EmbeddedServer

pytestmark = pytest.mark.timeout(90)

REQ = make_request("a reasonably long prompt, so the turn has many events")
THREADS = 32
STREAMS = 25


@pytest.fixture
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_an_abandoned_stream_is_freed_and_releases_its_connection(
        server: EmbeddedServer, no_gc: None) -> None:
    with make_client(server) as client:
        stream = client.stream(REQ)
        response = stream.response
        ref = weakref.ref(stream)
        for _event in stream:
            break
        del stream, _event
        assert ref() is None  # freed by reference counting alone
        assert response._closed  # type: ignore[attr-defined]

        # Iterated without ever being kept, or never iterated at all: the same.
        for _event in client.stream(REQ):
            break
        never = client.stream(REQ)
        response = never.response
        del never
        assert response._closed  # type: ignore[attr-defined]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs Linux /proc")
def test_threads_abandoning_streams_leak_no_connection_and_no_fd(
        no_gc: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="urllib3")
    errors: list[str] = []
    with EmbeddedServer() as server:
        with make_client(server) as client:  # warm up: imports, the first connection
            assert client.stream(REQ).collect().text.startswith("You said")
        before = open_fds()
        with make_client(server) as client:
            start = threading.Barrier(THREADS)

            def work(t: int) -> None:
                start.wait(30)
                try:
                    for k in range(STREAMS):
                        for _event in client.stream(REQ):
                            break  # abandoned mid-turn, no `with`
                        if k % 5 == 4:  # and some turns finished whole
                            assert client.stream(REQ).collect().text.startswith("You said")
                except Exception as exc:  # reported below
                    errors.append(f"{t}: {type(exc).__name__}: {exc}")

            threads = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
        # The server closes its side of each dropped connection on its own schedule.
        deadline = time.monotonic() + 10
        while open_fds() > before and time.monotonic() < deadline:
            time.sleep(0.05)
        leaked = open_fds() - before
    full = [r for r in caplog.records if "pool is full" in r.getMessage()]
    print(f"release: {THREADS} threads x {STREAMS} abandoned streams (+{STREAMS // 5} whole "
          f"each), errors {len(errors)}, 'pool is full' warnings {len(full)}, leaked fds "
          f"{max(leaked, 0)}", file=sys.stderr)
    assert errors == [] and full == [] and leaked <= 0
