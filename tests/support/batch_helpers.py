"""Helpers for the batch tests: JSONL inputs and test-local responders for the embedded
server (answers its fault plans cannot give: the usage limit, a timed 429)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from codexapi.server import Exchange


def write_input(path: Path, n: int, model: str = "m", special: dict[int, str] | None = None
                ) -> Path:
    """``n`` lines with ids ``q0``...; ``special`` gives some lines another model."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            request = {"model": (special or {}).get(i, model), "input": f"question {i}"}
            out.write(json.dumps({"id": f"q{i}", "request": request}) + "\n")
    return path


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(raw) for raw in path.read_text(encoding="utf-8").splitlines()
            if raw.strip()]


def ids(path: Path) -> list[Any]:
    return [line["id"] for line in lines(path)]


def model_calls(requests: Iterable[tuple[str, str, dict[str, str], Any]]) -> int:
    return sum(1 for method, path, _, _ in requests if path == "/responses")


class UsageLimit:
    """Answers a request for model ``limit`` as the real API does when the plan's usage limit
    is reached: 429, error type ``usage_limit_reached``, with when it resets."""

    def __init__(self, resets_in: int = 3600) -> None:
        self.resets_in = resets_in
        self.hits = 0

    def __call__(self, ex: Exchange) -> bool:
        if isinstance(ex.body, dict) and ex.body.get("model") == "limit":
            self.hits += 1
            ex.send_json(429, {"error": {
                "type": "usage_limit_reached", "message": "The usage limit has been reached",
                "plan_type": "plus", "resets_in_seconds": self.resets_in}})
            return True
        return False


class FirstIs429:
    """The first model call gets ``429`` with ``Retry-After``; every call's arrival time is
    kept (monotonic), so a test can see that nobody sent during the pause."""

    def __init__(self, retry_after: float = 1.0) -> None:
        self.retry_after = retry_after
        self.arrivals: list[float] = []
        self.limited_at: float | None = None
        self._lock = threading.Lock()

    def __call__(self, ex: Exchange) -> bool:
        with self._lock:
            now = time.monotonic()
            if self.limited_at is None:
                self.limited_at = now
                answer = True
            else:
                self.arrivals.append(now)
                answer = False
        if answer:
            ex.send_error(429, "Rate limit reached for requests", "rate_limit_exceeded",
                          "requests", {"Retry-After": f"{self.retry_after:g}"})
        return answer


class PeakConcurrency:
    """Runs the embedded server's own route, counting how many model calls it is answering at
    once (``peak``)."""

    def __init__(self) -> None:
        self.active = 0
        self.peak = 0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, ex: Exchange) -> bool:
        if ex.path != "/responses":
            return False
        from codexapi.server import ROUTES

        with self._lock:
            self.active += 1
            self.calls += 1
            self.peak = max(self.peak, self.active)
        try:
            ROUTES[("POST", "/responses")](ex)
        finally:
            with self._lock:
                self.active -= 1
        return True


class HoldUntilFull:
    """Holds the first model calls until ``n`` of them are in flight at once (``full`` is set),
    then until ``release`` is set: a test knows every worker is mid-call in between."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.active = 0
        self.full = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, ex: Exchange) -> bool:
        if ex.path != "/responses":
            return False
        from codexapi.server import ROUTES

        with self._lock:
            self.active += 1
            if self.active >= self.n:
                self.full.set()
        if not self.release.is_set():
            self.release.wait(30)
        try:
            ROUTES[("POST", "/responses")](ex)
        finally:
            with self._lock:
                self.active -= 1
        return True


class HoldAfterPause:
    """The first model call, and any that arrives while the pause it asks for lasts, get a
    429 with ``Retry-After: retry_after``; calls that arrive once that pause is over are held
    until ``n`` are in flight at once, or for ``hold`` seconds. ``peak_after`` is the most
    calls in flight at once after the pause before any of them ended: what the lowered limit
    let through."""

    def __init__(self, retry_after: float, n: int, hold: float) -> None:
        self.retry_after = retry_after
        self.n = n
        self.hold = hold
        self.limited_at: float | None = None
        self.rejected = 0
        self.active_after = 0
        self.peak_after = 0
        self.ended_after = 0
        self._cond = threading.Condition()

    def __call__(self, ex: Exchange) -> bool:
        if ex.path != "/responses":
            return False
        from codexapi.server import ROUTES

        with self._cond:
            now = time.monotonic()
            if self.limited_at is None:
                self.limited_at = now
            # A little early: the workers' wall clocks and this monotonic one differ.
            after = now >= self.limited_at + 0.9 * self.retry_after
            if not after:
                self.rejected += 1
                ex.send_error(429, "Rate limit reached for requests", "rate_limit_exceeded",
                              "requests", {"Retry-After": f"{self.retry_after:g}"})
                return True
            self.active_after += 1
            if not self.ended_after:
                self.peak_after = max(self.peak_after, self.active_after)
            self._cond.notify_all()
            self._cond.wait_for(lambda: self.active_after >= self.n, self.hold)
        try:
            ROUTES[("POST", "/responses")](ex)
        finally:
            with self._cond:
                self.active_after -= 1
                self.ended_after += 1
        return True


class AnswerFirstHoldRest:
    """Answers the first model call at once and holds the next ones until ``release`` is set;
    ``full`` is set once ``n`` of them are held, ``ended`` counts the held calls answered."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.calls = 0
        self.held = 0
        self.ended = 0
        self.full = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, ex: Exchange) -> bool:
        if ex.path != "/responses":
            return False
        with self._lock:
            self.calls += 1
            if self.calls == 1:
                return False
            self.held += 1
            if self.held >= self.n:
                self.full.set()
        self.release.wait(30)
        from codexapi.server import ROUTES

        try:
            ROUTES[("POST", "/responses")](ex)
        finally:
            with self._lock:
                self.ended += 1
        return True
