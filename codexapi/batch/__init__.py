"""Batch jobs: many requests, resumable, rate-limit aware, on threads or a Dask cluster.

    from codexapi import Provider, batch
    for result in batch.run("in.jsonl", Provider(base_url=...), output="out.jsonl"):
        print(result.id, result.status, result.text)

``run`` checks everything (input lines, providers, the output file, the engine) before any
request is sent, then yields a :class:`BatchResult` per request as each completes. See
docs/batch.md; ``codexapi batch`` is a thin layer on it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from ..client import Client, Timeout, provider_from_env
from ..deadline import Deadline
from ..errors import ConfigError
from ..models import Provider
from .engine import BatchRun, BatchStopped, Engine, Summary, ThreadEngine
from .jobs import BatchInputError, Job, as_jobs, read_jobs, resolve_providers
from .limiter import AdaptiveLimit
from .output import ResultLog, read_results
from .results import OFFLINE, BatchResult
from .spec import ClientSpec

ENGINES = ("threads", "dask")


def _spec(value: Provider | ClientSpec, load_entrypoints: bool) -> ClientSpec:
    if isinstance(value, ClientSpec):
        return value
    if isinstance(value, Provider):
        return ClientSpec(value, load_entrypoints=load_entrypoints)
    raise ConfigError(f"a provider must be a Provider or a ClientSpec, got "
                      f"{type(value).__name__}")


def _origin(base_url: str) -> str:
    return base_url.rstrip("/")


def run(
    requests: Iterable[Any] | str | os.PathLike[str],
    provider: Provider | ClientSpec | None = None,
    *,
    concurrency: int = 8,
    engine: str = "threads",
    scheduler: Any = None,
    output: str | os.PathLike[str] | None = None,
    retry_failed: bool = False,
    providers: Mapping[str, Provider | ClientSpec] | None = None,
    defaults: Mapping[str, Any] | None = None,
    max_attempts: int = 8,
    timeout: Timeout = None,
    deadline: float | None = None,
    load_entrypoints: bool = True,
    config: str | os.PathLike[str] | None = None,
    offline: bool = False,
) -> BatchRun:
    """Run a batch; iterate the returned :class:`BatchRun` for results as they complete.

    ``requests``: a JSONL file path, or an iterable of :class:`Job`, ``(id,
    ResponsesRequest)`` pairs, or line-shaped mappings ``{"id", "request", "provider"?}``.
    ``provider``: where requests go (a :class:`ClientSpec` to name auth and plugins for
    workers); default ``$OPENAI_BASE_URL`` or the OpenAI API. ``offline``: answer from the
    embedded scripted model instead (no ``provider`` then; result lines say ``"base_url":
    "offline"``); never implied. ``providers``: the ids a line's ``"provider"`` may name
    (default: Codex's config, loaded only if a line names one).
    ``output``: a results file (a regular file, locked for the run; ``"-"``: standard
    output, nothing resumed); ids already ``ok`` there are skipped (``error`` ones too,
    unless ``retry_failed``), unless their line came from another server than the one this
    run sends them to; results are appended as they complete. ``concurrency``: the
    ceiling of calls in flight; the limit adapts below it. ``engine``: ``"threads"`` or
    ``"dask"`` (``scheduler``: an address or a ``distributed.Client``). ``defaults``: request
    fields for lines that lack them (e.g. a model). ``max_attempts``: tries per request when
    rate limited. ``timeout``: per call, connect and response head; ``deadline``: per call,
    the whole of it, retries and reads included (see ``Client.stream``).
    ``config``: the Codex config file that line providers come from (default
    ``$CODEX_HOME/config.toml``).

    Raises :class:`BatchInputError` (a ConfigError) before sending anything when the input,
    providers, output file (not a regular file, not ours, or held by another run) or engine
    are wrong; iterating raises :class:`BatchStopped` after the last result when the usage
    limit stopped the run.
    """
    if engine not in ENGINES:
        raise ConfigError(f"unknown batch engine {engine!r} (known: {', '.join(ENGINES)})")
    if offline and provider is not None:
        raise ConfigError("offline=True answers from the embedded scripted model: give no "
                          "provider with it")
    Deadline.of(deadline)  # a bad one is the caller's error, before anything is sent
    if max_attempts < 1:
        raise ConfigError(f"max_attempts counts the first try too; it must be >= 1, got "
                          f"{max_attempts}")
    limit = AdaptiveLimit(concurrency)
    # The output first: a run another run holds is refused before anything else is done.
    log = ResultLog(output) if output is not None else None
    server: Any = None
    try:
        if isinstance(requests, str | os.PathLike):
            source = os.fspath(requests)
            jobs = read_jobs(source, defaults)
        else:
            source = "requests"
            jobs = as_jobs(requests, defaults)
        named = {j.provider for j in jobs if j.provider is not None}
        table: Mapping[str, Provider | ClientSpec] = providers or {}
        if named and providers is None:
            from ..models import load_providers

            table = load_providers(config)
        resolve_providers(jobs, table, source)
        if offline:
            from ..server import EmbeddedServer

            server = EmbeddedServer().start()
            provider = Provider(name="offline", base_url=server.base_url)
        base = _spec(provider if provider is not None else provider_from_env(),
                     load_entrypoints)
        specs: dict[str | None, ClientSpec] = {None: base}
        for name in named:
            specs[name] = _spec(table[name], load_entrypoints)
        for spec in specs.values():
            spec.check()
        origins = {key: _origin(spec.provider.base_url) for key, spec in specs.items()}
        if offline:
            origins[None] = OFFLINE
        summary = Summary()
        if log is not None:
            done = log.done(retry_failed)
            left = [j for j in jobs if j.id not in done
                    or log.origins.get(j.id) != origins[j.provider]]
            summary.skipped = len(jobs) - len(left)
            summary.other_server = sum(1 for j in left if j.id in done)
            jobs = left
        summary.total = len(jobs)
        chosen: Engine
        if engine == "dask":
            from .dask_engine import DaskEngine

            chosen = DaskEngine(scheduler, specs, concurrency, timeout, deadline)
        else:
            clients: dict[str | None, Client] = {}
            try:
                for key, spec in specs.items():
                    clients[key] = spec.build()
            except BaseException:
                for built in clients.values():
                    built.close()
                raise
            chosen = ThreadEngine(clients, concurrency, timeout, deadline)
        if log is not None:
            try:
                log.open()
            except BaseException:
                chosen.close()
                raise
    except BaseException:
        if log is not None:
            log.abandon()
        if server is not None:
            server.stop()
        raise
    return BatchRun(jobs, chosen, limit, log, summary, max_attempts, origins=origins,
                    cleanup=server.stop if server is not None else None)


__all__ = [
    "ENGINES",
    "OFFLINE",
    "BatchInputError",
    "BatchResult",
    "BatchRun",
    "BatchStopped",
    "ClientSpec",
    "Job",
    "ResultLog",
    "Summary",
    "read_jobs",
    "read_results",
    "run",
]
