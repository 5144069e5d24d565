"""Errors of the cassette layer: every one a :class:`codexapi.CodexApiError`."""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import CodexApiError


class CassetteError(CodexApiError):
    """A cassette could not be used: missing, unreadable, or without the request asked for."""


class CorruptCassetteError(CassetteError):
    """The cassette file is not valid YAML or not a cassette; names the file and line."""

    def __init__(self, message: str, path: str, line: int | None = None,
                 column: int | None = None) -> None:
        where = path if line is None else f"{path}:{line}" + (
            f":{column}" if column is not None else "")
        super().__init__(f"corrupt cassette {where}: {message}")
        self.path = path
        self.line = line
        self.column = column


class NoMatchingInteractionError(CassetteError):
    """A request was made that the cassette has no recording for (and may not record)."""

    def __init__(self, method: str, url: str, body_summary: str, cassette: str,
                 record_mode: str, candidates: Sequence[str] = (), hint: str = "") -> None:
        lines = [f"cassette {cassette} (record mode {record_mode!r}) has no interaction for "
                 f"{method} {url} with body {body_summary}"]
        if candidates:
            lines.append("closest recorded requests:")
            lines.extend(f"  - {c}" for c in candidates)
        if hint:
            lines.append(hint)
        super().__init__("\n".join(lines))
        self.method = method
        self.url = url
        self.body_summary = body_summary
        self.cassette = cassette
        self.record_mode = record_mode


class NetworkBlockedError(CassetteError):
    """Something tried to open a connection while replaying with record mode ``none``."""
