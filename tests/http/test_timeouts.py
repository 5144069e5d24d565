"""Connect/read timeouts per provider and per call; the stream idle timeout stays separate, so
a long stream that keeps sending is never cut by a total timeout."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import pytest
from conftest import REQ, make_client

from codexapi import (
    Client,
    IdleTimeout,
    OutputTextDelta,
    Provider,
    ReadTimeout,
    hookimpl,
)
from codexapi.server import EmbeddedServer, Exchange, route


def _num(ex: Exchange, name: str, default: float) -> float:
    return float(ex.query.get(name, [default])[0])


@route("POST", "/test-timeouts/trickle")
def _trickle(ex: Exchange) -> None:
    time.sleep(_num(ex, "head_delay", 0))
    ex.start_stream()
    try:
        for i in range(int(_num(ex, "n", 5))):
            delta = json.dumps({"type": "response.output_text.delta", "delta": f"{i} "})
            ex.write(f"data: {delta}\n\n".encode())
            time.sleep(_num(ex, "gap", 0))
        done = json.dumps({"type": "response.completed", "response": {"id": "r"}})
        ex.write(f"data: {done}\n\n".encode())
        ex.end_stream()
    except OSError:
        pass


@route("POST", "/test-timeouts/slow-json")
@route("GET", "/test-timeouts/slow-json")
def _slow_json(ex: Exchange) -> None:
    time.sleep(_num(ex, "head_delay", 0))
    with contextlib.suppress(OSError):
        ex.send_json(200, {"output": [{"type": "message", "role": "user", "content": "c"}],
                           "models": [{"slug": "m1"}]})


class Paths:
    """Sends every endpoint to a test route."""

    @hookimpl(tryfirst=True)
    def codexapi_endpoint_path(self, provider: Provider, endpoint: str) -> str | None:
        return "test-timeouts/trickle" if endpoint == "stream" else "test-timeouts/slow-json"


def client(server: EmbeddedServer, params: dict[str, Any], **kw: Any) -> Client:
    """A client whose calls reach the test routes above, asking them for ``params``."""
    kw.setdefault("stream_idle_timeout", None)  # the Provider's own: these tests time it
    return make_client(server, plugins=[Paths()],
                       query_params={k: str(v) for k, v in params.items()}, **kw)


def text(c: Client, **kw: Any) -> str:
    with c, c.stream(REQ, **kw) as events:
        return "".join(e.delta for e in events if isinstance(e, OutputTextDelta))


def test_a_long_stream_is_never_cut_by_a_total_timeout(server: EmbeddedServer) -> None:
    # 8 gaps of 0.15 s: the stream lasts ~1.2 s, longer than the read and idle timeouts, but
    # bytes keep coming, so only the idle timeout (between reads) could end it, and it doesn't.
    c = client(server, {"n": 8, "gap": 0.15}, read_timeout=0.3, stream_idle_timeout=1.0)
    started = time.monotonic()
    assert text(c, timeout=(1.0, 0.3)) == "0 1 2 3 4 5 6 7 "
    assert time.monotonic() - started > 1.05


def test_the_idle_timeout_ends_a_silent_stream(server: EmbeddedServer) -> None:
    c = client(server, {"n": 2, "gap": 2.0}, stream_idle_timeout=0.3)
    seen: list[str] = []
    started = time.monotonic()
    with pytest.raises(IdleTimeout), c, c.stream(REQ) as events:
        for e in events:
            if isinstance(e, OutputTextDelta):
                seen.append(e.delta)
    assert seen == ["0 "]
    assert time.monotonic() - started < 1.5


def test_a_per_call_read_timeout_does_not_stretch_the_idle_timeout(
        server: EmbeddedServer) -> None:
    # The call may wait 5 s for the head, but once streaming, 0.3 s of silence is idleness.
    c = client(server, {"n": 2, "gap": 2.0}, stream_idle_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(IdleTimeout):
        text(c, timeout=(1.0, 5.0))
    assert time.monotonic() - started < 1.5


def test_per_call_timeout_bounds_the_wait_for_the_head(server: EmbeddedServer) -> None:
    c = client(server, {"head_delay": 1.5}, read_timeout=30.0, stream_idle_timeout=30.0)
    started = time.monotonic()
    with pytest.raises(ReadTimeout):
        text(c, timeout=(1.0, 0.2))
    assert time.monotonic() - started < 1.2


def test_per_call_timeout_can_be_longer_than_the_provider(server: EmbeddedServer) -> None:
    c = client(server, {"head_delay": 0.4, "n": 2}, read_timeout=0.15, stream_idle_timeout=5.0)
    assert text(c, timeout=2.0) == "0 1 "
    c = client(server, {"head_delay": 0.4, "n": 2}, read_timeout=0.15, stream_idle_timeout=5.0)
    with pytest.raises(ReadTimeout):
        text(c)  # the provider's read timeout bounds the head by default


def test_compact_and_models_take_a_timeout(server: EmbeddedServer) -> None:
    with client(server, {"head_delay": 0.4}, read_timeout=0.15) as c:
        with pytest.raises(ReadTimeout):
            c.compact(REQ)
        assert [i.type for i in c.compact(REQ, timeout=(1.0, 2.0))] == ["message"]
        with pytest.raises(ReadTimeout):
            c.list_models("1.0", timeout=0.1)
        assert c.list_models("1.0", timeout=2.0).slugs == ["m1"]
