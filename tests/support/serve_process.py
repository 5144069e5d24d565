"""``codexapi serve`` in a process of its own, for tests that measure it (its memory, what it
prints) apart from the test process: started on a free port, stopped on exit."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit


class ServeProcess:
    """``with ServeProcess("--api-key", "K") as server: server.base_url, server.rss()``."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.base_url = ""
        self._stderr: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc: subprocess.Popen[str] | None = None

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.base_url).port or 0

    def __enter__(self) -> ServeProcess:
        exe = Path(sys.executable).with_name("codexapi")
        self.proc = subprocess.Popen(
            [str(exe), "serve", "--port", "0", *self.args], stdout=subprocess.PIPE,
            stderr=self._stderr, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.proc.stdout is not None
        for _ in range(5):
            line = self.proc.stdout.readline()
            if " embedded server on " in line:
                self.base_url = line.split(" on ", 1)[1].split()[0]
                return self
        self.__exit__()
        raise AssertionError(f"codexapi serve did not start: {self.stderr()}")

    def rss(self) -> int:
        """The server's resident memory, in bytes (Linux: /proc)."""
        assert self.proc is not None
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        kb = next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))
        return int(kb) * 1024

    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", "replace")

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            if self.proc.stdout is not None:
                self.proc.stdout.close()
