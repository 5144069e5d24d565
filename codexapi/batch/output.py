"""The output file: held by one run at a time, read for what an earlier run finished, then
appended one whole result line at a time.

The file must be a regular file (or ``-``, standard output, which is not resumable): a device
or a FIFO has no "earlier results" to read, and reading one (``/dev/zero``, ``/dev/full``)
would never end. Lines are read under :data:`MAX_LINE` bytes.

A run holds an exclusive OS lock (``flock``) on the file from before it reads it until it ends;
a second run on the same file is refused at once instead of interleaving its lines with the
first's. The kernel releases the lock however the process ends, SIGKILL included.

Each result is one ``os.write`` of a complete line on a file opened with ``O_APPEND``, so a
process killed at any moment leaves every finished result in the file and, at worst, a last
line without its newline (never observed with one write of a small line, but a full disk or a
networked file system can do it). That torn tail is cut off before the next run appends; its
job simply runs again.

A file that does not read as our output (a line that is not JSON, or an object without our
``id``/``status``) is refused: appending to it would corrupt someone's data.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from typing import IO

import orjson

from .jobs import BatchInputError, JobId
from .results import ERROR, OK, BatchResult

#: Status values of our lines.
STATUSES = frozenset({OK, ERROR})
#: The longest line read from an output file (text, items and usage of one response: the
#: answer's text is in it twice, and a response is bounded by the provider's
#: ``max_message_bytes``, 32 MiB by default).
MAX_LINE = 128 * 1024 * 1024
#: The output name that means standard output.
STDOUT = "-"


def _not_ours(path: str, number: int, why: str) -> BatchInputError:
    return BatchInputError(f"{path} line {number} is not a codexapi batch result ({why}); "
                           "refusing to append to a file that is not ours: choose another "
                           "output file")


def _not_regular(path: str) -> BatchInputError:
    return BatchInputError(f"output {path} is not a regular file (a device, FIFO or "
                           "directory): give a file path, or - for standard output")


def _lines(handle: IO[bytes], path: str) -> Iterator[tuple[int, bytes]]:
    """(number, line) of each line, each read under MAX_LINE bytes; the last may lack its
    newline."""
    number = 0
    while raw := handle.readline(MAX_LINE + 1):
        number += 1
        if len(raw) > MAX_LINE:
            raise _not_ours(path, number, f"longer than {MAX_LINE} bytes")
        yield number, raw


def _lock(fd: int) -> bool:
    """Take the exclusive lock of ``fd`` without waiting; False when another process has it."""
    try:
        import fcntl
    except ImportError:  # Windows: lock the first byte instead
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class ResultLog:
    """The output file of one run: locked, its resume state read, and the appender for new
    results. ``path`` ``-`` is standard output (nothing to resume, nothing locked).

    ``latest`` maps each id found to its last status, ``origins`` to the ``base_url`` of that
    line; later lines win (``--retry-failed`` appends a new line for an id that had failed).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.latest: dict[JobId, str] = {}
        self.origins: dict[JobId, str | None] = {}
        self.lines = 0
        self.torn = 0
        self.created = False
        self._fd: int | None = None
        self._good_size = 0
        if self.path == STDOUT:
            return
        self._fd = self._open_locked()
        try:
            self._scan()
        except BaseException:
            self.close()
            raise

    @property
    def stdout(self) -> bool:
        return self.path == STDOUT

    def _open_locked(self) -> int:
        with contextlib.suppress(FileNotFoundError):
            if not stat.S_ISREG(os.stat(self.path).st_mode):
                raise _not_regular(self.path)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        existed = os.path.exists(self.path)
        try:
            # O_NONBLOCK: a FIFO put there since the check must not block the open.
            fd = os.open(self.path, flags | getattr(os, "O_NONBLOCK", 0), 0o644)
        except OSError as exc:
            raise BatchInputError(f"cannot open output file {self.path}: "
                                  f"{exc.strerror or exc}") from None
        self.created = not existed
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise _not_regular(self.path)
            if not _lock(fd):
                raise BatchInputError(f"output {self.path} is in use by another codexapi batch "
                                      "run: wait for it to end, or choose another output file")
            if hasattr(os, "set_blocking"):
                os.set_blocking(fd, True)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _scan(self) -> None:
        assert self._fd is not None
        os.lseek(self._fd, 0, os.SEEK_SET)
        good = 0
        with open(self._fd, "rb", closefd=False) as handle:
            for number, raw in _lines(handle, self.path):
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
                base_url = obj.get("base_url")
                self.latest[obj["id"]] = obj["status"]
                self.origins[obj["id"]] = base_url if isinstance(base_url, str) else None
                self.lines += 1
        self._good_size = good

    def done(self, retry_failed: bool = False) -> set[JobId]:
        """Ids not to run again: those whose last line is ok (and errors, unless retried)."""
        return {i for i, s in self.latest.items() if s == OK or (s == ERROR and not retry_failed)}

    def open(self) -> None:
        """Ready for appending: cut off a torn last line."""
        if self._fd is None or not self.torn:
            return
        try:
            os.ftruncate(self._fd, self._good_size)
        except OSError as exc:
            raise BatchInputError(f"cannot write output file {self.path}: "
                                  f"{exc.strerror or exc}") from None
        self.torn = 0

    def append(self, result: BatchResult) -> None:
        """Append one result as a whole line (one write, so it is never interleaved)."""
        fd = sys.stdout.fileno() if self.stdout else self._fd
        if fd is None:
            raise ValueError(f"the output {self.path} is closed")
        line = result.to_line()
        written = os.write(fd, line)
        while written < len(line):  # a short write (full disk, signal): finish the line
            written += os.write(fd, line[written:])
        self.latest[result.id] = result.status
        self.origins[result.id] = result.base_url
        self.lines += 1

    def compact(self) -> None:
        """Rewrite the file with one line per id (the last one), atomically; used after
        ``--retry-failed`` (or a resume against another server) appended new lines for ids
        already there. The lock is held until the new file is in place."""
        if self.lines == len(self.latest) or self._fd is None:
            return
        last: dict[JobId, bytes] = {}
        os.lseek(self._fd, 0, os.SEEK_SET)
        with open(self._fd, "rb", closefd=False) as handle:
            for _, raw in _lines(handle, self.path):
                if raw.strip():
                    last[orjson.loads(raw)["id"]] = raw
        tmp = f"{self.path}.tmp-{os.getpid()}"
        with open(tmp, "wb") as out:
            out.writelines(last.values())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        self.lines = len(last)
        self.close()

    def close(self) -> None:
        """Release the file (and its lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def abandon(self) -> None:
        """Close, and remove the file if this run created it and wrote nothing (the run was
        refused before it started)."""
        self.close()
        if self.created and self.lines == 0:
            with contextlib.suppress(OSError):
                if os.path.getsize(self.path) == 0:
                    os.unlink(self.path)


def read_results(path: str | os.PathLike[str]) -> Iterable[BatchResult]:
    """Every result line of an output file, in order (for scripts and tests)."""
    with open(path, "rb") as handle:
        for _, raw in _lines(handle, os.fspath(path)):
            if raw.strip():
                yield BatchResult.from_json(orjson.loads(raw))


__all__ = ["MAX_LINE", "ResultLog", "read_results"]
