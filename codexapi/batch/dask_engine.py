"""The Dask engine: the calls run as tasks on a Dask distributed cluster.

Each worker builds its own Client from the job's :class:`ClientSpec` (once per process; see
:func:`codexapi.batch.spec.cached_client`) and runs :func:`codexapi.batch.spec.call_job`.
Futures come back to the driver through ``distributed.as_completed``; the driver alone writes
the output. What the workers share is held by the scheduler, with Dask's own primitives:

- the concurrency limit is a ``distributed.Semaphore`` with ``max_leases`` = the ceiling; every
  call holds a lease. A worker process keeps the leases its calls give back for the next call
  it runs (:class:`WorkerLeases`: no round trip to the scheduler per call) and returns one to
  the scheduler once it has been idle for :data:`LINGER` seconds. To bring the limit down
  (429s, nearly used windows) the driver itself holds the leases it takes away
  (:class:`LimitLeases`: a helper thread waits for them at the scheduler), and gives them back
  as the limit grows again; while it waits for them, it says so (a ``distributed.Variable``)
  and the workers return each lease as its call ends.
- the pause is a ``distributed.Variable`` holding the wall-clock time before which no call may
  start; a worker that gets a 429 moves it forward, every worker reads it before its call.

A worker that dies mid-call is Dask's to handle: the scheduler runs the task again elsewhere
(the leases of the dead process come back after Dask's lease timeout), and the driver writes
each id once whatever happens.

The end of a run (its last result, an error, Ctrl-C, a usage-limit stop) closes it in order, so
the Semaphore closes with no lease held or awaited (Dask warns about those, and an acquire
still waiting on a closed Semaphore would hold its worker thread for good): no call starts any
more; every worker gives its idle leases back, and its tasks waiting for a lease give up (they
wait :data:`TAKE_SLICE` at a time); the calls still running get :data:`DRAIN` seconds to end
and give theirs back; what is still held then (a call that runs on, a worker that died) the
driver releases at the scheduler; the Semaphore closes; and the workers drop the run, a call
that ends later giving back nothing.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import attrs

from ..client import Timeout
from ..errors import ConfigError
from ..threads import start_daemon
from .jobs import Job
from .results import ERROR, NOT_SENT, Outcome, error_result
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
    #: A Variable that is true while the driver waits for leases (a lower limit).
    squeeze: str = ""


#: The pause Variable's value once the driver stopped the run (usage limit reached).
STOP = "stop"
#: Seconds a worker process trusts its last read of the pause (and of the squeeze). A worker
#: that gets a 429 pauses its own threads at once; the others see it within this lag (plus
#: their calls in flight).
PAUSE_FRESH = 0.2
#: Seconds an idle lease stays with a worker process before it goes back to the scheduler.
#: While the worker has calls queued the next one takes it at once (no round trip); a worker
#: with nothing left to run gives it back soon, for another worker or the driver.
LINGER = 0.25
#: Seconds the driver's wait for a lease lasts at a time (see LimitLeases).
TAKE_WAIT = 0.1
#: Seconds a worker's wait for a lease lasts at a time, so it sees that the run was closed.
TAKE_SLICE = 0.5
#: Seconds the driver's close waits for the calls still running to give their leases back
#: (and for the workers' waits to give up) before it releases what is left itself.
DRAIN = 2 * TAKE_SLICE
#: Seconds the thread that returns idle leases waits with none to return before it ends.
QUIET = 5.0
#: Tasks on the cluster at once, per call of the ceiling (see DaskEngine.window).
WINDOW = 16


class _Reading:
    """A ``distributed.Variable``'s value as last read by this process, read again once it is
    older than :data:`PAUSE_FRESH` (so a call costs no round trip to the scheduler while the
    reading is fresh); the threads of a worker process share it."""

    def __init__(self, variable: Any, default: Any) -> None:
        self.variable = variable
        self._lock = threading.Lock()
        self._value = default
        self._read_at = float("-inf")
        self._reading = False

    def get(self, fresh: bool = False) -> Any:
        now = time.monotonic()
        with self._lock:
            if not fresh and (now - self._read_at < PAUSE_FRESH or self._reading):
                # Another thread is reading it: its last value is as good meanwhile.
                return self._value
            self._reading = True
        try:
            value = self.variable.get(timeout=CONNECT_TIMEOUT)
        finally:
            with self._lock:
                self._reading = False
        self.remember(value, now)
        return value

    def remember(self, value: Any, now: float | None = None) -> None:
        with self._lock:
            self._value = value
            self._read_at = time.monotonic() if now is None else now


class _VariablePause:
    """The pause, as a ``distributed.Variable`` holding a wall-clock deadline (or "stop")."""

    def __init__(self, reading: _Reading) -> None:
        self._reading = reading

    def _until(self, fresh: bool = False) -> float:
        """The deadline; ``inf`` once the driver stopped the run (the Variable says "stop")."""
        value = self._reading.get(fresh)
        return float(value) if isinstance(value, int | float) else float("inf")

    def pause(self, seconds: float) -> None:
        # Never moves the deadline back: a later, longer Retry-After wins.
        until = max(self._until(fresh=True), time.time() + seconds)
        self._reading.variable.set(until)
        self._reading.remember(until)

    def stop(self) -> None:
        self._reading.variable.set(STOP)
        self._reading.remember(STOP)

    def wait(self) -> bool:
        while (left := self._until() - time.time()) > 0:
            if left == float("inf"):
                return False
            # Short naps, so a stop during a long pause is seen soon.
            time.sleep(min(left, 1.0))
        return True


class WorkerLeases:
    """The leases of a run's Semaphore that one worker process holds: a call takes an idle one
    if there is one (no round trip), else waits for one from the scheduler; a call that ends
    keeps its lease idle here, and a lease idle for :data:`LINGER` seconds goes back. So the
    limit stays cluster-wide (every call holds a lease the scheduler counts) while a busy worker
    talks to the scheduler only when its number of calls grows."""

    def __init__(self, semaphore: Any) -> None:
        self._semaphore = semaphore
        self._cond = threading.Condition(threading.Lock())
        #: When each idle lease became idle, oldest first (the newest is taken first, so the
        #: oldest are the ones that go back).
        self._idle: list[float] = []
        self._reaper: threading.Thread | None = None
        #: The run is over: no lease is taken any more, and each goes back as its call ends.
        self._closed = False
        #: The driver closed the Semaphore: a lease is dropped here (it was released for us).
        self._gone = False

    @property
    def closed(self) -> bool:
        return self._closed

    def take(self) -> bool:
        """Hold a lease for a call; False once the run is closed (the call must not start)."""
        with self._cond:
            if self._closed:
                return False
            if self._idle:
                self._idle.pop()
                return True
        # A bounded wait at a time: the driver's close cannot end a wait at the scheduler.
        while not self._semaphore.acquire(timeout=TAKE_SLICE):
            if self._closed:
                return False
        if self._closed:
            self.give_back(keep=False)
            return False
        return True

    def give_back(self, keep: bool = True) -> None:
        """A call ended; ``keep``: hold its lease idle for the next call (False: the driver is
        waiting for leases, return it at once)."""
        with self._cond:
            if self._gone:
                return
            if keep and not self._closed:
                self._idle.append(time.monotonic())
                if self._reaper is None:
                    self._reaper = start_daemon(self._return_idle, "codexapi-batch-leases")
                elif len(self._idle) == 1:
                    self._cond.notify()  # the reaper may be waiting with nothing to time
                return
        self._semaphore.release()

    def _return_idle(self) -> None:
        # One thread per run and process while the run goes on (one per call would cost more
        # than the call's own bookkeeping); it ends after a quiet spell, or at close.
        while True:
            with self._cond:
                now = time.monotonic()
                expired = 0
                while expired < len(self._idle) and self._idle[expired] + LINGER <= now:
                    expired += 1
                del self._idle[:expired]
                if not expired:
                    if self._idle:
                        self._cond.wait(self._idle[0] + LINGER - now)
                    elif self._closed or not (self._cond.wait(QUIET) or self._idle):
                        self._reaper = None
                        return
                    continue
            for _ in range(expired):
                self._semaphore.release()

    async def aclose(self) -> None:
        """Return every idle lease now and stop refreshing; calls still running return theirs
        as they end. Run in the worker's event loop, where the Semaphore is awaited."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            idle, self._idle = len(self._idle), []
        for _ in range(idle):
            await self._semaphore.release()
        # Its timer would keep it (and itself) alive for the life of the worker; the leases of
        # the calls still running are the driver's to settle (within DRAIN, long before they
        # could time out). None with an infinite lease timeout.
        refresh = getattr(self._semaphore, "refresh_callback", None)
        if refresh is not None:
            refresh.stop()

    def drop(self) -> None:
        """The Semaphore is closed: a call that ends from now on gives nothing back."""
        with self._cond:
            self._closed = self._gone = True


class _RunState:
    """What a worker process keeps for one run: its leases, its readings of the pause and of
    whether the driver wants leases back."""

    def __init__(self, shared: Shared) -> None:
        distributed = import_distributed()
        # One Semaphore per run and process: it registers with the scheduler once and
        # refreshes the leases this process holds on a timer.
        self.leases = WorkerLeases(
            distributed.Semaphore(max_leases=shared.ceiling, name=shared.slots))
        self.pause = _VariablePause(_Reading(distributed.Variable(shared.pause), 0.0))
        self.squeeze = (_Reading(distributed.Variable(shared.squeeze), False)
                        if shared.squeeze else None)

    def keep_leases(self) -> bool:
        # A closed run's Variables are about to go: a read of a deleted one waits for a value.
        if self.leases.closed:
            return False
        return self.squeeze is None or not self.squeeze.get()


_runs: dict[str, _RunState] = {}
#: Runs this process dropped, newest last: a task of one that starts late (its cancel was on
#: the way) must not register the closed Semaphore again. Names only, a bounded number.
_ended: collections.deque[str] = collections.deque(maxlen=256)
_runs_lock = threading.Lock()


def _run_state(shared: Shared) -> _RunState | None:
    with _runs_lock:
        state = _runs.get(shared.slots)
        if state is None:
            if shared.slots in _ended:
                return None
            state = _runs[shared.slots] = _RunState(shared)
        return state


def run_task(spec: ClientSpec, job: Job, shared: Shared, timeout: Timeout,
             deadline: float | None = None) -> Outcome:
    """One call, on a worker: a lease of the run's semaphore held around it."""
    state = _run_state(shared)
    # A task of a closed run that starts late (its cancel was on the way) reads nothing of it:
    # the driver deletes the run's Variables once it is closed.
    if state is None or state.leases.closed:
        return Outcome(NOT_SENT)
    client = cached_client(spec)
    # Waiting out a pause holds no lease: the driver may be taking leases back meanwhile.
    if not state.pause.wait() or not state.leases.take():
        return Outcome(NOT_SENT)
    try:
        return call_job(client, job, state.pause, timeout, deadline)
    finally:
        state.leases.give_back(state.keep_leases())


async def forget_run(slots: str) -> None:
    """On a worker at the end of a run (``Client.run``, in the worker's event loop): give its
    idle leases back; its calls still running give theirs back as they end, and no call
    starts."""
    with _runs_lock:
        state = _runs.get(slots)
    if state is not None:
        await state.leases.aclose()


def end_run(slots: str) -> None:
    """On a worker once the driver closed the run's Semaphore: drop what the process kept for
    the run (a call still running gives nothing back: its lease went with the Semaphore)."""
    with _runs_lock:
        state = _runs.pop(slots, None)
        _ended.append(slots)
    if state is not None:
        state.leases.drop()


class LimitLeases:
    """The leases the driver holds to keep the limit below the ceiling: ``ceiling - limit`` of
    them. A helper thread waits for them at the scheduler as calls give leases back (during a
    pause too, when the driver itself hears of nothing); meanwhile the squeeze Variable tells
    the workers to return each lease as its call ends instead of keeping it. When the limit
    grows they go back at once."""

    def __init__(self, semaphore: Any, squeeze: Any, ceiling: int) -> None:
        self._semaphore = semaphore
        self._squeeze = squeeze
        self._ceiling = ceiling
        self._lock = threading.Lock()
        self._held = 0
        self._want = 0
        self._taker: threading.Thread | None = None
        self._closed = False
        #: What the squeeze Variable says; its lock keeps the sets in order.
        self._squeezing = False
        self._squeeze_lock = threading.Lock()

    @property
    def held(self) -> int:
        return self._held

    def set_limit(self, limit: int) -> None:
        with self._lock:
            self._want = self._ceiling - max(1, min(limit, self._ceiling))
            surplus = max(0, self._held - self._want)
            self._held -= surplus
            if self._held < self._want and self._taker is None and not self._closed:
                self._taker = start_daemon(self._take, "codexapi-batch-limit")
        for _ in range(surplus):
            self._semaphore.release()
        self._squeeze_while_short()

    def _take(self) -> None:
        while True:
            with self._lock:
                if self._closed or self._held >= self._want:
                    self._taker = None
                    break
            # A bounded wait, so a higher limit or the end of the run is seen soon.
            if self._semaphore.acquire(timeout=TAKE_WAIT):
                with self._lock:
                    keep = not self._closed and self._held < self._want
                    if keep:
                        self._held += 1
                if not keep:
                    self._semaphore.release()
            self._squeeze_while_short()
        self._squeeze_while_short()

    def _squeeze_while_short(self) -> None:
        with self._squeeze_lock:
            with self._lock:
                short = self._held < self._want and not self._closed
            if short != self._squeezing:
                self._squeeze.set(short)
                self._squeezing = short

    def close(self) -> None:
        """Stop taking leases and give back the ones held."""
        with self._lock:
            self._closed = True
            taker = self._taker
        if taker is not None:
            taker.join(4 * TAKE_WAIT)
        with self._lock:
            held, self._held = self._held, 0
        for _ in range(held):
            self._semaphore.release()


class DaskEngine:
    """Submits each job as a task; hands outcomes back in completion order."""

    def __init__(self, scheduler: Any, specs: Mapping[str | None, ClientSpec], ceiling: int,
                 timeout: Timeout = None, deadline: float | None = None) -> None:
        distributed = import_distributed()
        self._client, self._owned = connect(scheduler)
        run = self._run = uuid.uuid4().hex[:12]
        name = f"codexapi-batch-{run}"
        self._shared = Shared(f"{name}-slots", f"{name}-pause", ceiling, f"{name}-squeeze")
        self._specs = specs
        self._timeout = timeout
        self._deadline = deadline
        self._ceiling = ceiling
        client = self._client
        self._semaphore = distributed.Semaphore(
            max_leases=ceiling, name=self._shared.slots, scheduler_rpc=client.scheduler,
            loop=client.loop)
        self._pause = distributed.Variable(self._shared.pause, client=client)
        self._pause.set(0.0)
        self._squeeze = distributed.Variable(self._shared.squeeze, client=client)
        self._squeeze.set(False)
        self._limit = LimitLeases(self._semaphore, self._squeeze, ceiling)
        # with_results: the client's event loop gathers each result as its task ends, so the
        # driver never waits on a fetch in its own loop.
        self._completed = distributed.as_completed(loop=client.loop, with_results=True,
                                                   raise_errors=False)
        self._futures: dict[Any, Job] = {}
        #: Jobs submitted to this engine, not yet to the cluster (see next_done).
        self._queued: list[Job] = []
        self._attempt = 0

    def submit(self, job: Job) -> None:
        self._queued.append(job)

    def _send_queued(self) -> None:
        # One graph for many tasks: the scheduler's cost of a graph is mostly per graph, and
        # on a LocalCluster it runs in this process, beside the driver.
        jobs, self._queued = self._queued, []
        keys = [f"codexapi-batch-{self._run}-{self._attempt + n}" for n in range(1, len(jobs) + 1)]
        self._attempt += len(jobs)
        futures = self._client.map(
            run_task, [self._specs[job.provider] for job in jobs], jobs, key=keys, pure=False,
            shared=self._shared, timeout=self._timeout, deadline=self._deadline)
        for future, job in zip(futures, jobs, strict=True):
            self._futures[future] = job
            self._completed.add(future)

    def next_done(self) -> tuple[Job, Outcome]:
        # Jobs go to the cluster half a window at a time, as soon as less than half a window
        # is there (so the cluster never runs dry while the driver catches up).
        half = WINDOW * self._ceiling // 2
        if self._queued and (len(self._queued) >= half or len(self._futures) < half):
            self._send_queued()
        future, value = next(self._completed)
        job = self._futures.pop(future)
        if isinstance(value, Outcome):
            outcome = value
        else:  # the task failed (KilledWorker, cancelled...): (type, exception, traceback)
            exc = value[1] if isinstance(value, tuple) and len(value) == 3 else value
            outcome = Outcome(ERROR, error_result(job.id, exc), message=str(exc))
        future.release()
        return job, outcome

    def window(self, limit: int) -> int:
        # The semaphore does the limiting, cluster-wide; the window keeps enough tasks on the
        # cluster that no call slot waits for the driver, which hears of a call's end and
        # sends the next tasks tens of milliseconds later on a busy machine, while a quick
        # call frees its slot in a few (2x the ceiling: +39 ms per request against plain
        # Dask tasks, 16x: +13 ms, in benchmarks/cluster.py's dask_overhead).
        return WINDOW * self._ceiling

    def set_limit(self, limit: int) -> None:
        self._limit.set_limit(limit)

    def stop(self) -> None:
        self._pause.set(STOP)

    def close(self) -> None:
        # In order (see the module's docstring): no lease may be held or awaited when the
        # Semaphore closes.
        try:
            self._pause.set(STOP)  # a task that has not started its call does not
            if self._futures:
                self._client.cancel(list(self._futures))
                self._futures.clear()
            self._client.run(forget_run, self._shared.slots, on_error="ignore")
            self._limit.close()
            self._settle_leases()
            self._semaphore.close()
            self._client.run(end_run, self._shared.slots, on_error="ignore")
            self._pause.delete()
            self._squeeze.delete()
        finally:
            if self._owned:
                self._client.close()

    def _settle_leases(self) -> None:
        """Wait up to :data:`DRAIN` seconds for the run's leases to come back and its workers'
        waits for one to give up, then release at the scheduler the leases still held: by a
        call that runs on (its result is no one's now) or by a worker that died (Dask would
        free those only after its lease timeout, 30 s by default, long after the close)."""
        name = self._shared.slots

        # Local functions: cloudpickle sends them by value, so the scheduler needs no
        # codexapi. Dask has no public call that lists a Semaphore's leases.
        def outstanding(dask_scheduler: Any) -> tuple[int, int]:
            semaphores = dask_scheduler.extensions["semaphores"]
            return (len(semaphores.leases.get(name, ())),
                    semaphores.metrics["pending"].get(name, 0))

        def release_all(dask_scheduler: Any) -> int:
            semaphores = dask_scheduler.extensions["semaphores"]
            held = list(semaphores.leases.get(name, ()))
            for lease in held:
                semaphores.release(name=name, lease_id=lease)
            return len(held)

        end = time.monotonic() + DRAIN
        while True:
            held, waiting = self._client.run_on_scheduler(outstanding)
            if not (held or waiting) or time.monotonic() >= end:
                break
            time.sleep(0.05)
        if held:
            self._client.run_on_scheduler(release_all)


__all__ = ["DaskEngine", "LimitLeases", "WorkerLeases", "connect", "end_run", "forget_run",
           "run_task"]
