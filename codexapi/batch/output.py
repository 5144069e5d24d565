"""The output file: read what an earlier run finished, then append results one whole line at a
time.

Each result is one ``os.write`` of a complete line on a file opened with ``O_APPEND``, so a
process killed at any moment leaves every finished result in the file and, at worst, a last
line without its newline (never observed with one write of a small line, but a full disk or a
networked file system can do it). That torn tail is cut off before the next run appends; its
job simply runs again.

A file that does not read as our output (a line that is not JSON, or an object without our
``id``/``status``) is refused: appending to it would corrupt someone's data.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import orjson

from .jobs import BatchInputError, JobId
from .results import ERROR, OK, BatchResult

#: Status values of our lines.
STATUSES = frozenset({OK, ERROR})


def _not_ours(path: str, number: int, why: str) -> BatchInputError:
    return BatchInputError(f"{path} line {number} is not a codexapi batch result ({why}); "
                           "refusing to append to a file that is not ours: choose another "
                           "output file")


class ResultLog:
    """Resume state of one output file, and the appender for new results.

    ``latest`` maps each id found to its last status; later lines win (``--retry-failed``
    appends a new line for an id that had failed).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.latest: dict[JobId, str] = {}
        self.lines = 0
        self.torn = 0
        self._fd: int | None = None
        self._good_size = 0
        self._scan()

    def _scan(self) -> None:
        try:
            handle = open(self.path, "rb")  # noqa: SIM115
        except FileNotFoundError:
            return
        except OSError as exc:
            raise BatchInputError(f"cannot read output file {self.path}: "
                                  f"{exc.strerror or exc}") from None
        good = 0
        with handle:
            for number, raw in enumerate(handle, 1):
                if not raw.endswith(b"\n"):
                    # Only the last line can lack its newline: a write cut short.
                    self.torn = len(raw)
                    break
                good += len(raw)
                if not raw.strip():
                    continue
                try:
                    obj = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    raise _not_ours(self.path, number, "not JSON") from None
                if not isinstance(obj, dict) or "id" not in obj or obj.get("status") not in \
                        STATUSES:
                    raise _not_ours(self.path, number, "no \"id\" and \"status\" ok/error")
                self.latest[obj["id"]] = obj["status"]
                self.lines += 1
        self._good_size = good

    def done(self, retry_failed: bool = False) -> set[JobId]:
        """Ids not to run again: those whose last line is ok (and errors, unless retried)."""
        return {i for i, s in self.latest.items() if s == OK or (s == ERROR and not retry_failed)}

    def open(self) -> None:
        """Open for appending, first cutting off a torn last line."""
        if self._fd is not None:
            return
        try:
            if self.torn:
                os.truncate(self.path, self._good_size)
                self.torn = 0
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BatchInputError(f"cannot write output file {self.path}: "
                                  f"{exc.strerror or exc}") from None

    def append(self, result: BatchResult) -> None:
        """Append one result as a whole line (one write, so it is never interleaved)."""
        if self._fd is None:
            self.open()
        assert self._fd is not None
        line = result.to_line()
        written = os.write(self._fd, line)
        while written < len(line):  # a short write (full disk, signal): finish the line
            written += os.write(self._fd, line[written:])
        self.latest[result.id] = result.status
        self.lines += 1

    def compact(self) -> None:
        """Rewrite the file with one line per id (the last one), atomically; used after
        ``--retry-failed`` appended new lines for ids that had failed."""
        if self.lines == len(self.latest):
            return
        self.close()
        last: dict[JobId, bytes] = {}
        with open(self.path, "rb") as handle:
            for raw in handle:
                if raw.strip():
                    last[orjson.loads(raw)["id"]] = raw
        tmp = f"{self.path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as out:
            out.writelines(last.values())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        self.lines = len(last)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_results(path: str | os.PathLike[str]) -> Iterable[BatchResult]:
    """Every result line of an output file, in order (for scripts and tests)."""
    with open(path, "rb") as handle:
        for raw in handle:
            if raw.strip():
                yield BatchResult.from_json(orjson.loads(raw))


__all__ = ["ResultLog", "read_results"]
