"""The input of a batch: one :class:`Job` per JSONL line (or per item given to ``run``).

Everything here runs before any request is sent, so a bad line is refused with its line number
while nothing has been spent: malformed JSON, a missing, mistyped or duplicate id, an unknown
request field, an unknown provider.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
import orjson

from ..errors import ConfigError
from ..models import ResponsesRequest

#: What a JSONL line (or a mapping given to ``run``) may hold at its top level.
LINE_KEYS = frozenset({"id", "request", "provider"})

JobId = str | int


class BatchInputError(ConfigError):
    """A batch input line that cannot be run; the message names the line."""


@attrs.frozen
class Job:
    """One request of a batch: its id, the request, and the provider it goes to (None: the
    batch's own provider). ``line`` is where it came from (1-based; 0 when not from a file)."""

    id: JobId
    request: ResponsesRequest
    provider: str | None = None
    line: int = 0


def request_fields() -> frozenset[str]:
    """The JSON fields a line's ``request`` may have: those of :class:`ResponsesRequest`."""
    return frozenset(attrs.fields_dict(ResponsesRequest))


def _where(line: int, source: str) -> str:
    return f"{source} line {line}" if line else source


def build_request(fields: Any, where: str, defaults: Mapping[str, Any] | None = None
                  ) -> ResponsesRequest:
    """A :class:`ResponsesRequest` from a line's ``request`` object, or a BatchInputError."""
    if not isinstance(fields, Mapping):
        raise BatchInputError(f"{where}: \"request\" must be an object with the fields of "
                              f"ResponsesRequest, got {type(fields).__name__}")
    known = request_fields()
    unknown = sorted(set(fields) - known)
    if unknown:
        raise BatchInputError(f"{where}: unknown request field {unknown[0]!r} (known: "
                              f"{', '.join(sorted(known))})")
    merged = {**(defaults or {}), **fields}
    if not isinstance(merged.get("model"), str) or not merged["model"]:
        raise BatchInputError(f"{where}: the request needs a \"model\" string (or give a "
                              "default model)")
    try:
        return ResponsesRequest(**merged)
    except (TypeError, ValueError) as exc:
        raise BatchInputError(f"{where}: the request does not fit ResponsesRequest: "
                              f"{exc}") from None


def _check_id(value: Any, where: str) -> JobId:
    if value is None:
        raise BatchInputError(f"{where}: missing \"id\" (every line needs a unique id)")
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise BatchInputError(f"{where}: \"id\" must be a non-empty string or an integer, "
                              f"got {value!r}"[:200])
    return value


def job_from_mapping(obj: Any, line: int, source: str,
                     defaults: Mapping[str, Any] | None = None) -> Job:
    where = _where(line, source)
    if not isinstance(obj, Mapping):
        raise BatchInputError(f"{where}: expected a JSON object "
                              "{\"id\": ..., \"request\": {...}}, "
                              f"got {type(obj).__name__}")
    extra = sorted(set(obj) - LINE_KEYS)
    if extra:
        raise BatchInputError(f"{where}: unknown key {extra[0]!r} (a line holds \"id\", "
                              "\"request\" and an optional \"provider\")")
    job_id = _check_id(obj.get("id"), where)
    if "request" not in obj:
        raise BatchInputError(f"{where}: missing \"request\"")
    provider = obj.get("provider")
    if provider is not None and (not isinstance(provider, str) or not provider):
        raise BatchInputError(f"{where}: \"provider\" must be a provider id string, got "
                              f"{provider!r}"[:200])
    return Job(job_id, build_request(obj["request"], where, defaults), provider, line)


def read_jobs(path: str | os.PathLike[str], defaults: Mapping[str, Any] | None = None
              ) -> list[Job]:
    """Every job of a JSONL file, checked; blank lines are skipped."""
    source = os.fspath(path)
    try:
        handle = open(source, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise BatchInputError(f"cannot read {source}: {exc.strerror or exc}") from None
    jobs = []
    with handle:
        for number, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise BatchInputError(f"{source} line {number}: not valid JSON ({exc})"
                                      ) from None
            jobs.append(job_from_mapping(obj, number, source, defaults))
    return check_unique(jobs, source)


def check_unique(jobs: list[Job], source: str) -> list[Job]:
    """Refuse a batch where two jobs share an id."""
    seen: dict[JobId, int] = {}
    for index, job in enumerate(jobs, 1):
        label, position = ("line", job.line) if job.line else ("item", index)
        first = seen.setdefault(job.id, position)
        if first != position:
            raise BatchInputError(f"{source} {label} {position}: duplicate id {job.id!r} "
                                  f"(first on {label} {first})")
    return jobs


def as_jobs(items: Iterable[Any], defaults: Mapping[str, Any] | None = None) -> list[Job]:
    """Jobs from what ``run`` accepts: Jobs, ``(id, ResponsesRequest)`` pairs, or line-shaped
    mappings ``{"id": ..., "request": {...}, "provider": ...}``."""
    jobs = []
    for index, item in enumerate(items, 1):
        where = f"requests item {index}"
        if isinstance(item, Job):
            _check_id(item.id, where)
            jobs.append(item)
        elif isinstance(item, tuple) and len(item) == 2:
            job_id, request = item
            _check_id(job_id, where)
            if not isinstance(request, ResponsesRequest):
                request = build_request(request, where, defaults)
            jobs.append(Job(job_id, request))
        else:
            job = job_from_mapping(item, 0, where, defaults)
            jobs.append(job)
    return check_unique(jobs, "requests")


def resolve_providers(jobs: Iterable[Job], known: Mapping[str, Any], source: str) -> None:
    """Refuse a job naming a provider that is not in ``known``."""
    for job in jobs:
        if job.provider is not None and job.provider not in known:
            where = _where(job.line, source)
            names = ", ".join(sorted(known)) or "none"
            raise BatchInputError(f"{where}: unknown provider {job.provider!r} (known: "
                                  f"{names})")


__all__ = ["BatchInputError", "Job", "JobId", "as_jobs", "read_jobs", "request_fields"]
