"""A Client survives os.fork(): a child never touches a connection its parent opened.

Without it, a child shares its parent's pooled keep-alive socket and, in about half the runs,
reads its parent's chunk-size line, times out, or receives another worker's answer.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator

import pytest
from conftest import make_client, make_request

from codexapi import Client, ConfigError, Provider, ResponsesRequest
from codexapi.server import EmbeddedServer

pytestmark = [pytest.mark.timeout(60),
              pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")]

RUNS = 10
CHILDREN = 4
POOL_WORKERS = 3
POOL_TASKS = 24


def ask(client: Client, prompt: str) -> str:
    return client.stream(make_request(prompt)).collect().text


@pytest.fixture(params=["responses", "responses_websocket"])
def client(server: EmbeddedServer, request: pytest.FixtureRequest) -> Iterator[Client]:
    # Over WebSocket the connection a child must not touch is one the wire keeps between
    # turns (WireContext.connections), not the transport's pool.
    with make_client(server, request.param, proxy="", stream_idle_timeout=5.0,
                     read_timeout=5.0) as c:
        yield c


def test_forked_children_each_get_their_own_answers(client: Client) -> None:
    codes: list[int] = []
    for run in range(RUNS):
        # The parent holds a pooled keep-alive connection at the moment of each fork.
        assert ask(client, f"parent {run}") == f"You said: parent {run}"
        pids = []
        for k in range(CHILDREN):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 3
                try:
                    prompt = f"child {run}.{k} of {os.getpid()}"
                    code = 0 if ask(client, prompt) == f"You said: {prompt}" else 2
                except BaseException:
                    code = 1
                finally:
                    os._exit(code)
            pids.append(pid)
        # ...and keeps using it while the children run.
        assert ask(client, f"parent again {run}") == f"You said: parent again {run}"
        for pid in pids:
            _, status = os.waitpid(pid, 0)
            codes.append(os.waitstatus_to_exitcode(status))
    errors = sum(code != 0 for code in codes)
    print(f"fork ({client.provider.wire}): {RUNS} runs x {CHILDREN} children, {errors} errors",
          file=sys.stderr)
    assert errors == 0, codes


_POOL_CLIENT: Client | None = None


def _pool_task(n: int) -> str:
    assert _POOL_CLIENT is not None
    try:
        return ask(_POOL_CLIENT, f"task {n}")
    except Exception as exc:  # counted by the parent, with the task that saw it
        return f"{type(exc).__name__}: {exc}"


def test_a_multiprocessing_fork_pool_shares_one_client(client: Client) -> None:
    global _POOL_CLIENT
    _POOL_CLIENT = client
    try:
        assert ask(client, "before the pool") == "You said: before the pool"
        with multiprocessing.get_context("fork").Pool(POOL_WORKERS) as pool:
            answers = pool.map(_pool_task, range(POOL_TASKS), chunksize=2)
        errors = sum(a != f"You said: task {n}" for n, a in enumerate(answers))
        print(f"fork pool ({client.provider.wire}): {POOL_WORKERS} workers x {POOL_TASKS} "
              f"tasks, {errors} errors", file=sys.stderr)
        assert answers == [f"You said: task {n}" for n in range(POOL_TASKS)]
        assert ask(client, "after the pool") == "You said: after the pool"
    finally:
        _POOL_CLIENT = None


def test_a_closed_client_refuses_new_calls(server: EmbeddedServer) -> None:
    client = Client(Provider(base_url=server.base_url), load_entrypoints=False)
    assert ask(client, "hi") == "You said: hi"
    before = len(server.requests)
    client.close()
    req = ResponsesRequest(model="m", input="again")
    for call in (lambda: client.stream(req), lambda: client.compact(req),
                 lambda: client.list_models("1.0")):
        with pytest.raises(ConfigError, match="closed"):
            call()
    assert len(server.requests) == before
