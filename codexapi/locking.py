"""An inter-process lock: a file beside the one it guards, locked with ``flock`` (POSIX) or
``msvcrt.locking`` (Windows).

Several processes that share one Codex ``auth.json`` (several Codex sessions, several
codexapi clients) must not refresh its tokens at once: the token endpoint accepts a refresh
token once, so a second refresh with the same one fails with ``refresh_token_reused``. The lock
is on a separate file because the guarded file is replaced by a rename, and a lock on the old
inode would not stop a process that opened the new one. The operating system releases the lock
when its holder exits, however it exits.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

#: How often a waiting process tries again, in seconds.
POLL = 0.01

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def file_lock(path: Path, timeout: float) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created, mode 0600, if missing) for the block.

    Raises :class:`TimeoutError` after ``timeout`` seconds of waiting, and the ``OSError`` of
    a lock file that cannot be created (a read-only directory).
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        until = time.monotonic() + max(timeout, 0.0)
        wait = threading.Event()
        while not _try_lock(fd):
            if time.monotonic() >= until:
                raise TimeoutError(f"{path} stayed locked for {timeout:g} s")
            wait.wait(POLL)
        try:
            yield
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


__all__ = ["file_lock"]
