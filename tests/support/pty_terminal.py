"""A child process on a pseudo-terminal, for tests of interactive commands (the chat REPL)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import signal
import subprocess
import termios
import time
from pathlib import Path


def _own_terminal() -> None:
    # A session of its own with the pty as controlling terminal, so Ctrl-C (a \x03 byte)
    # reaches it as SIGINT, exactly as in a terminal emulator.
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A child process on a pseudo-terminal; ``expect`` reads until a pattern shows up."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        self.master, slave = pty.openpty()
        # A child that hangs is dumped (SIGABRT -> faulthandler) so a failure shows where.
        env = {**env, "PYTHONFAULTHANDLER": "1"}
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env,
                                     cwd=cwd, preexec_fn=_own_terminal, close_fds=True)
        os.close(slave)
        self.seen = ""

    def expect(self, pattern: str, timeout: float = 20.0, dump: bool = True) -> str:
        deadline = time.monotonic() + timeout
        while not re.search(pattern, self.seen):
            left = deadline - time.monotonic()
            if left <= 0:
                stacks = self._dump() if dump else ""
                raise AssertionError(f"{pattern!r} not seen in {self.seen!r}{stacks}")
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"{pattern!r} not seen before exit: {self.seen!r}")
                self.seen += chunk.decode("utf-8", "replace")
        match = re.search(pattern, self.seen)
        assert match is not None
        self.seen = self.seen[match.end():]
        return match.group(0)

    def _dump(self) -> str:
        """The child's thread stacks, if it is still running (for the failure message)."""
        if self.proc.poll() is not None:
            return f" (exited {self.proc.returncode})"
        os.kill(self.proc.pid, signal.SIGABRT)
        out = b""
        end = time.monotonic() + 3
        while time.monotonic() < end:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                if self.proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
        return "\n--- child stacks ---\n" + out.decode("utf-8", "replace")

    def interrupt_at_prompt(self, prompt: str, tries: int = 5) -> None:
        """Press Ctrl-C at a line prompt and wait for the next one.

        CPython's readline loses a SIGINT that lands between drawing the prompt and waiting
        for a key (its select() then sleeps until a key comes): a test sending Ctrl-C the
        moment the prompt shows hits that window now and then, a person never does. So it
        presses again, as a person would; a REPL that ignores Ctrl-C still fails every try.
        """
        for left in range(tries, 0, -1):
            self.send("\x03")
            try:
                self.expect(prompt, timeout=2.0, dump=left == 1)
                return
            except AssertionError:
                if left == 1:
                    raise

    def send(self, data: str) -> None:
        os.write(self.master, data.encode())

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=20)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            os.close(self.master)
