"""The driver every engine shares, and the local thread engine.

The driver keeps a window of jobs submitted, takes outcomes back as they complete, writes and
yields the results, and feeds the adaptive limit. An engine only runs calls: ``submit(job)``,
``next_done()`` -> ``(job, outcome)``, ``window(limit)`` (how many jobs to keep submitted),
``set_limit(n)`` and ``close()``. Results are written only by the driver, in the process that
owns the output file.
"""

from __future__ import annotations

import collections
import concurrent.futures
import datetime as dt
import queue
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any, Protocol

import attrs

from ..client import Client, Timeout
from ..errors import CodexApiError
from ..threads import block_signals
from .jobs import Job, JobId
from .limiter import AdaptiveLimit, LocalPause, LocalSlots
from .output import ResultLog
from .results import (
    ERROR,
    NOT_SENT,
    OK,
    RATE_LIMITED,
    USAGE_LIMIT,
    BatchResult,
    Outcome,
    error_result,
)
from .spec import call_job


class BatchStopped(CodexApiError):
    """The run stopped before its end because the account's usage limit was reached.

    Every result finished before the stop was yielded (and written); the jobs left are not in
    the output, so running the same batch again once the limit has reset carries on.
    ``resets_at`` is when the server said the limit resets (an aware UTC datetime, or None).
    """

    def __init__(self, message: str, resets_at: dt.datetime | None, left: int) -> None:
        super().__init__(message)
        self.resets_at = resets_at
        self.left = left


@attrs.define
class Summary:
    """Counts of a run so far; final once the run's iterator is exhausted."""

    total: int = 0
    skipped: int = 0
    #: Ids the output held a result for from another server (base URL): run again.
    other_server: int = 0
    ok: int = 0
    failed: int = 0
    rate_limited: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    concurrency: int = 0
    lowest_concurrency: int = 0
    started: float = attrs.field(factory=time.monotonic)
    finished: float | None = None
    stopped: str | None = None
    resets_at: dt.datetime | None = None

    @property
    def done(self) -> int:
        return self.ok + self.failed

    @property
    def elapsed(self) -> float:
        return (self.finished if self.finished is not None else time.monotonic()) - self.started

    @property
    def requests_per_second(self) -> float:
        elapsed = self.elapsed
        return self.done / elapsed if elapsed > 0 else 0.0

    def count(self, result: BatchResult) -> None:
        if result.ok:
            self.ok += 1
        else:
            self.failed += 1
        usage = result.usage or {}
        self.input_tokens += int(usage.get("input_tokens") or 0)
        self.output_tokens += int(usage.get("output_tokens") or 0)

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "skipped": self.skipped,
                "other_server": self.other_server, "ok": self.ok,
                "failed": self.failed, "left": self.total - self.done,
                "rate_limited": self.rate_limited, "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens, "elapsed_seconds": round(self.elapsed, 3),
                "requests_per_second": round(self.requests_per_second, 2),
                "concurrency": self.concurrency, "lowest_concurrency": self.lowest_concurrency,
                "stopped": self.stopped,
                "resets_at": self.resets_at.isoformat() if self.resets_at else None}


class Engine(Protocol):
    def submit(self, job: Job) -> None: ...

    def next_done(self) -> tuple[Job, Outcome]: ...

    def window(self, limit: int) -> int: ...

    def set_limit(self, limit: int) -> None: ...

    def stop(self) -> None:
        """Start no more calls: those not started come back as ``NOT_SENT``."""

    def close(self) -> None: ...


class BatchRun:
    """A running batch: iterate it for :class:`BatchResult` values as they complete;
    ``summary`` holds the counts so far. Leaving the loop early (or ``close()``) stops it."""

    def __init__(self, jobs: list[Job], engine: Engine, limit: AdaptiveLimit,
                 log: ResultLog | None, summary: Summary, max_attempts: int = 8, *,
                 origins: Mapping[str | None, str] | None = None,
                 cleanup: Callable[[], None] | None = None) -> None:
        self.summary = summary
        self._jobs = jobs
        self._engine = engine
        self._limit = limit
        self._log = log
        self._max_attempts = max_attempts
        #: The base URL each provider key's results are marked with (``BatchResult.base_url``).
        self._origins = origins or {}
        self._cleanup = cleanup
        self._released = False
        self._iterator = self._run()

    def __iter__(self) -> Generator[BatchResult, None, None]:
        return self._iterator

    def __next__(self) -> BatchResult:
        return next(self._iterator)

    def close(self) -> None:
        self._iterator.close()
        self._release()  # (a run never iterated has no generator frame to do it)

    def _release(self) -> None:
        """Stop the engine, release the output file and its lock, stop an offline server."""
        if self._released:
            return
        self._released = True
        try:
            self._engine.close()
        finally:
            if self._log is not None:
                self._log.close()
            if self._cleanup is not None:
                self._cleanup()

    def __enter__(self) -> BatchRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> Generator[BatchResult, None, None]:
        summary, engine, limit, log = self.summary, self._engine, self._limit, self._log
        pending = collections.deque(self._jobs)
        attempts: collections.Counter[JobId] = collections.Counter()
        written: set[JobId] = set()
        in_flight = 0
        stop: Outcome | None = None
        summary.concurrency = summary.lowest_concurrency = limit.current
        summary.started = time.monotonic()
        try:
            while True:
                if stop is None:
                    room = engine.window(limit.current) - in_flight
                    while pending and room > 0:
                        engine.submit(pending.popleft())
                        in_flight += 1
                        room -= 1
                if in_flight == 0:
                    break
                job, outcome = engine.next_done()
                in_flight -= 1
                result = outcome.result
                if outcome.kind == OK:
                    limit.succeeded(outcome.snapshot)
                elif outcome.kind == RATE_LIMITED:
                    summary.rate_limited += 1
                    limit.rate_limited()
                    attempts[job.id] += 1
                    if attempts[job.id] < self._max_attempts:
                        pending.appendleft(job)  # first in line once the pause is over
                        result = None
                elif outcome.kind in (USAGE_LIMIT, NOT_SENT):
                    # Not a result: the job runs again when the batch is resumed.
                    if stop is None and outcome.kind == USAGE_LIMIT:
                        stop = outcome
                        engine.stop()  # what is queued is not sent
                    pending.appendleft(job)
                    result = None
                if limit.current != summary.concurrency:
                    engine.set_limit(limit.current)
                    summary.concurrency = limit.current
                    summary.lowest_concurrency = min(summary.lowest_concurrency, limit.current)
                if result is None:
                    continue
                if result.id in written:  # an engine redid a call: keep the first result
                    continue
                result = attrs.evolve(result, base_url=self._origins.get(job.provider))
                written.add(result.id)
                if log is not None:
                    log.append(result)
                summary.count(result)
                yield result
            if stop is None and log is not None:
                log.compact()  # (under the lock, before it is released)
        finally:
            summary.finished = time.monotonic()
            self._release()
        if stop is not None:
            summary.stopped = "usage_limit"
            summary.resets_at = stop.resets_at
            when = f"; it resets at {stop.resets_at.isoformat()}" if stop.resets_at else ""
            raise BatchStopped(f"usage limit reached{when}: stopped with {len(pending)} "
                               "request(s) left; run the same batch again to carry on "
                               f"({stop.message})", stop.resets_at, len(pending))


class ThreadEngine:
    """Calls on a thread pool in this process, one shared Client per provider."""

    #: Seconds between checks while waiting for an outcome (keeps Ctrl-C responsive).
    POLL = 0.5

    def __init__(self, clients: Mapping[str | None, Client], concurrency: int,
                 timeout: Timeout = None, deadline: float | None = None) -> None:
        self._clients = clients
        self._timeout = timeout
        self._deadline = deadline
        self.pause = LocalPause()
        self._ceiling = concurrency
        self._slots = LocalSlots(concurrency)
        self._done: queue.SimpleQueue[tuple[Job, Outcome]] = queue.SimpleQueue()
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=concurrency, thread_name_prefix="codexapi-batch",
            initializer=block_signals)  # Ctrl-C reaches the driver, not a worker

    def _call(self, job: Job) -> None:
        try:
            with self._slots:
                outcome = call_job(self._clients[job.provider], job, self.pause,
                                   self._timeout, self._deadline)
        except BaseException as exc:  # the driver must always hear back
            outcome = Outcome(ERROR, error_result(job.id, exc), message=str(exc))
        self._done.put((job, outcome))

    def submit(self, job: Job) -> None:
        self._pool.submit(self._call, job)

    def next_done(self) -> tuple[Job, Outcome]:
        while True:
            try:
                return self._done.get(timeout=self.POLL)
            except queue.Empty:
                continue

    def window(self, limit: int) -> int:
        # Jobs queued ahead of the threads: a thread that finishes a call starts the next one
        # at once instead of waiting for the driver's turn at the GIL.
        return 2 * self._ceiling

    def set_limit(self, limit: int) -> None:
        self._slots.set_limit(limit)

    def stop(self) -> None:
        self.pause.stop()

    def close(self) -> None:
        self.pause.stop()
        self._slots.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for client in self._clients.values():
            client.close()


__all__ = ["BatchRun", "BatchStopped", "Engine", "Summary", "ThreadEngine"]
