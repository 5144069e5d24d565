"""What a worker needs to make its own Client, and the one call every engine runs.

A :class:`ClientSpec` is a picklable description (the Provider, plus the *names* of the auth
factory and plugins to import): a Dask worker builds its Client from it and keeps it for the
tasks that follow. Clients themselves are never pickled: they own sockets and credentials, and
a credential has no business travelling inside a task.
"""

from __future__ import annotations

import importlib
import pickle
import threading
from collections.abc import Iterable
from typing import Any, Protocol

import attrs

from ..client import Client, Timeout
from ..errors import CodexApiError, ConfigError
from ..models import Provider
from .jobs import Job
from .limiter import pause_seconds
from .results import (
    NOT_SENT,
    OK,
    RATE_LIMITED,
    USAGE_LIMIT,
    Outcome,
    error_result,
    ok_result,
    outcome_of_error,
)


def import_name(name: str, what: str) -> Any:
    """``module`` or ``module:attribute``, imported; a ConfigError naming ``what`` if not."""
    module_name, _, attribute = name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in filter(None, attribute.split(".")):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{what} {name!r} cannot be imported: {exc}") from None
    return obj


def _names(value: str | Iterable[str]) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen
class ClientSpec:
    """How to build a Client anywhere: ``provider``; ``auth``, the import name
    (``module:attr``) of an Auth class or zero-argument factory, None for the usual resolution
    (plugins, the provider's ``env_key``, ``OPENAI_API_KEY``, Codex ``auth.json``) on the machine
    that runs the call; ``plugins``, import names of plugin modules or objects; and whether
    entry-point plugins load."""

    provider: Provider
    auth: str | None = None
    plugins: tuple[str, ...] = attrs.field(default=(), converter=_names)
    load_entrypoints: bool = True

    def check(self) -> None:
        """Import every name now, so a misspelt one fails before anything is sent."""
        if self.auth is not None:
            import_name(self.auth, "auth")
        for name in self.plugins:
            import_name(name, "plugin")

    def build(self) -> Client:
        """A new Client. 429s are left to the batch (it pauses every worker and sends the
        call again), so the provider's retry policy gets ``retry_429=False``; 5xx and
        transport retries stay as configured."""
        retry = attrs.evolve(self.provider.retry, retry_429=False)
        provider = attrs.evolve(self.provider, retry=retry)
        auth = import_name(self.auth, "auth")() if self.auth is not None else None
        plugins = [import_name(n, "plugin") for n in self.plugins]
        return Client(provider, auth=auth, plugins=plugins,
                      load_entrypoints=self.load_entrypoints)


_clients: dict[bytes, Client] = {}
_clients_lock = threading.Lock()


def cached_client(spec: ClientSpec) -> Client:
    """This process's Client for ``spec`` (a Dask worker builds one per spec, then reuses it
    and its connection pool for every task)."""
    key = pickle.dumps(spec)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = spec.build()
        return client


class Pause(Protocol):
    def pause(self, seconds: float) -> None: ...

    def wait(self) -> bool: ...

    def stop(self) -> None: ...


def call_job(client: Client, job: Job, pause: Pause, timeout: Timeout = None,
             deadline: float | None = None) -> Outcome:
    """Send one job and say how it went. A 429 pauses every worker sharing ``pause``."""
    if not pause.wait():
        return Outcome(NOT_SENT)
    try:
        result = client.stream(job.request, timeout=timeout, deadline=deadline).collect()
    except CodexApiError as exc:
        outcome = outcome_of_error(job.id, exc)
        if outcome.kind == RATE_LIMITED:
            pause.pause(pause_seconds(outcome.retry_after))
        elif outcome.kind == USAGE_LIMIT:
            pause.stop()  # at once, before another worker starts a call
        return outcome
    except Exception as exc:  # a plugin's bug fails this job, not the batch
        return Outcome("error", error_result(job.id, exc), message=str(exc))
    return Outcome(OK, ok_result(job.id, result), snapshot=result.rate_limits)


__all__ = ["ClientSpec", "cached_client", "call_job"]
