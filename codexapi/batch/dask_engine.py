"""The Dask engine: the calls run as tasks on a Dask distributed cluster.

Each worker builds its own Client from the job's :class:`ClientSpec` (once per process; see
:func:`codexapi.batch.spec.cached_client`) and runs :func:`codexapi.batch.spec.call_job`.
Futures come back to the driver through ``distributed.as_completed``; the driver alone writes
the output. What the workers share is held by the scheduler, with Dask's own primitives:

- the concurrency limit is a ``distributed.Semaphore`` with ``max_leases`` = the ceiling; every
  call holds a lease. To bring the limit down (429s, nearly used windows) the driver itself
  holds the leases it takes away, and gives them back as the limit grows again.
- the pause is a ``distributed.Variable`` holding the wall-clock time before which no call may
  start; a worker that gets a 429 moves it forward, every worker reads it before its call.

A worker that dies mid-call is Dask's to handle: the scheduler runs the task again elsewhere,
and the driver writes each id once whatever happens.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from ..client import Timeout
from ..errors import ConfigError
from .jobs import Job
from .results import ERROR, Outcome, error_result
from .spec import ClientSpec, cached_client, call_job

#: Seconds to wait for the scheduler when connecting to an address.
CONNECT_TIMEOUT = 10.0


def import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError("the dask engine needs Dask distributed: pip install "
                          "'codexapi[dask]'") from None
    return distributed


def connect(scheduler: Any) -> tuple[Any, bool]:
    """A ``distributed.Client`` for ``scheduler`` (an address, a Client, or None for the
    current default client), and whether we created it (and must close it)."""
    distributed = import_distributed()
    if scheduler is None:
        try:
            return distributed.get_client(), False
        except ValueError:
            raise ConfigError("the dask engine needs a scheduler: give its address "
                              "(--scheduler tcp://HOST:8786) or a distributed.Client") from None
    if isinstance(scheduler, distributed.Client):
        return scheduler, False
    if not isinstance(scheduler, str) or not scheduler:
        raise ConfigError(f"scheduler must be an address or a distributed.Client, got "
                          f"{type(scheduler).__name__}")
    try:
        client = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT,
                                    set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                          ) from None
    return client, True


@attrs.frozen
class Shared:
    """Names of the run's cluster-wide primitives (what a task needs to find them)."""

    slots: str
    pause: str
    ceiling: int


#: The pause Variable's value once the driver stopped the run (usage limit reached).
STOP = "stop"
#: Seconds a worker process trusts its last read of the pause. A worker that gets a 429 pauses
#: its own threads at once; the others see it within this lag (plus their calls in flight).
PAUSE_FRESH = 0.2


class _VariablePause:
    """The pause, as a ``distributed.Variable`` holding a wall-clock deadline; its last read
    is shared by the threads of a worker process, so a call costs no extra round trip to the
    scheduler while the reading is fresh."""

    _lock = threading.Lock()
    #: Variable name -> (deadline, when it was read), per process.
    _known: dict[str, tuple[float, float]] = {}

    def __init__(self, variable: Any) -> None:
        self._variable = variable
        self._name = str(variable.name)

    def _until(self, fresh: bool = False) -> float:
        """The deadline; ``inf`` once the driver stopped the run (the Variable says "stop")."""
        now = time.monotonic()
        with self._lock:
            known = self._known.get(self._name)
        if known is not None and not fresh and now - known[1] < PAUSE_FRESH:
            return known[0]
        value = self._variable.get(timeout=CONNECT_TIMEOUT)
        until = float(value) if isinstance(value, int | float) else float("inf")
        self._remember(until, now)
        return until

    def _remember(self, until: float, now: float) -> None:
        with self._lock:
            known = self._known.get(self._name)
            self._known[self._name] = (max(until, known[0]) if known else until, now)

    def pause(self, seconds: float) -> None:
        # Never moves the deadline back: a later, longer Retry-After wins.
        until = max(self._until(fresh=True), time.time() + seconds)
        self._variable.set(until)
        self._remember(until, time.monotonic())

    def stop(self) -> None:
        self._variable.set(STOP)
        self._remember(float("inf"), time.monotonic())

    def wait(self) -> bool:
        while (left := self._until() - time.time()) > 0:
            if left == float("inf"):
                return False
            # Short naps, so a stop during a long pause is seen soon.
            time.sleep(min(left, 1.0))
        return True


_semaphores: dict[str, Any] = {}


def run_task(spec: ClientSpec, job: Job, shared: Shared, timeout: Timeout,
             deadline: float | None = None) -> Outcome:
    """One call, on a worker: a lease of the run's semaphore held around it."""
    distributed = import_distributed()
    semaphore = _semaphores.get(shared.slots)
    if semaphore is None:
        # One per name and process: each instance registers with the scheduler and refreshes
        # its leases on a timer.
        semaphore = _semaphores.setdefault(
            shared.slots, distributed.Semaphore(max_leases=shared.ceiling, name=shared.slots))
    pause = _VariablePause(distributed.Variable(shared.pause))
    client = cached_client(spec)
    with semaphore:
        return call_job(client, job, pause, timeout, deadline)


class DaskEngine:
    """Submits each job as a task; hands outcomes back in completion order."""

    def __init__(self, scheduler: Any, specs: Mapping[str | None, ClientSpec], ceiling: int,
                 timeout: Timeout = None, deadline: float | None = None) -> None:
        distributed = import_distributed()
        self._client, self._owned = connect(scheduler)
        run = self._run = uuid.uuid4().hex[:12]
        self._shared = Shared(f"codexapi-batch-{run}-slots", f"codexapi-batch-{run}-pause",
                              ceiling)
        self._specs = specs
        self._timeout = timeout
        self._deadline = deadline
        self._ceiling = ceiling
        client = self._client
        self._semaphore = distributed.Semaphore(
            max_leases=ceiling, name=self._shared.slots, scheduler_rpc=client.scheduler,
            loop=client.loop)
        self._pause = distributed.Variable(
            self._shared.pause, client=client)
        self._pause.set(0.0)
        self._held = 0
        self._want = 0
        # with_results: the client's event loop gathers each result as its task ends, so the
        # driver never waits on a fetch in its own loop.
        self._completed = distributed.as_completed(loop=client.loop, with_results=True,
                                                   raise_errors=False)
        self._futures: dict[Any, Job] = {}
        self._attempt = 0

    def submit(self, job: Job) -> None:
        self._attempt += 1
        future = self._client.submit(
            run_task, self._specs[job.provider], job, self._shared, self._timeout,
            self._deadline,
            key=f"codexapi-batch-{self._run}-{self._attempt}", pure=False)
        self._futures[future] = job
        self._completed.add(future)

    def next_done(self) -> tuple[Job, Outcome]:
        future, value = next(self._completed)
        job = self._futures.pop(future)
        if isinstance(value, Outcome):
            outcome = value
        else:  # the task failed (KilledWorker, cancelled...): (type, exception, traceback)
            exc = value[1] if isinstance(value, tuple) and len(value) == 3 else value
            outcome = Outcome(ERROR, error_result(job.id, exc), message=str(exc))
        future.release()
        if self._held < self._want:
            self._catch_up()
        return job, outcome

    def window(self, limit: int) -> int:
        # Enough tasks queued that no lease waits for the driver; the semaphore does the
        # limiting, cluster-wide.
        return 2 * self._ceiling

    def set_limit(self, limit: int) -> None:
        self._want = self._ceiling - max(1, min(limit, self._ceiling))
        while self._held > self._want:
            self._semaphore.release()
            self._held -= 1
        self._catch_up()

    def _catch_up(self) -> None:
        # Take the leases the lower limit removes as calls give them back: a short wait
        # each time, never a block on the driver while every lease is busy.
        while self._held < self._want and self._semaphore.acquire(timeout=0.02):
            self._held += 1

    def stop(self) -> None:
        self._pause.set(STOP)

    def close(self) -> None:
        try:
            if self._futures:
                self._client.cancel(list(self._futures))
                self._futures.clear()
            while self._held:
                self._semaphore.release()
                self._held -= 1
            self._pause.delete()
            self._semaphore.close()
        finally:
            if self._owned:
                self._client.close()


__all__ = ["DaskEngine", "connect", "run_task"]
