"""A bearer token printed by a command: Codex's ``[model_providers.<id>.auth]``.

Company gateways often hand out short-lived tokens from a command (a vault or SSO helper).
:class:`CommandAuth` runs it as codex-rs does (``login/src/auth/external_bearer.rs``): without
a shell, stdin closed, under a timeout; the first line of its standard output, trimmed, is the
bearer token. The token is cached for ``refresh_interval`` seconds (0: until the server
answers 401) and the command runs again after a 401; callers that need a token while it runs
wait for that one run. A command that times out, fails or prints nothing is an
:class:`AuthError` naming it and quoting the last line of its standard error, scrubbed of
anything that looks like a credential.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from . import forksafe
from .auth import RenewingAuth, checked_secret
from .errors import AuthError, DeadlineExceeded
from .redact import REDACTED, scrub_text

if TYPE_CHECKING:
    import subprocess

#: Codex's defaults (``model_providers.<id>.auth.timeout_ms`` / ``refresh_interval_ms``).
DEFAULT_TIMEOUT = 5.0
DEFAULT_REFRESH_INTERVAL = 300.0
#: The most output kept from the command: the head of stdout, the tail of stderr.
MAX_OUTPUT = 64 * 1024
#: How long to wait for a killed command's pipes to close (a child that kept them open).
_PIPE_GRACE = 1.0

# What a token command's diagnostics may quote besides the token itself.
_CREDENTIAL_TEXT = re.compile(
    r"(?i)\b(bearer\s+|(?:access[_-]?|refresh[_-]?|id[_-]?)?token[\"']?\s*[=:]\s*[\"']?"
    r"|(?:api[_-]?key|secret|password)[\"']?\s*[=:]\s*[\"']?)[^\s\"',;]+")


def _seconds(name: str, value: object, allow_zero: bool) -> float:
    if (isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
            or value < 0 or (value == 0 and not allow_zero)):
        least = "0 or more" if allow_zero else "more than 0"
        raise AuthError(f"CommandAuth {name} is seconds ({least}), got {value!r}")
    return float(value)


class CommandAuth(RenewingAuth):
    """``Authorization: Bearer <token>``, the token printed by ``command args...``.

    ``timeout`` bounds one run (seconds); ``refresh_interval`` is how long a token is used
    before the command runs again (seconds; 0 runs it again only after a 401). ``cwd`` is the
    directory it runs in (default: the current one); a ``command`` with a path separator is
    relative to it, a bare name is looked up on ``PATH``.
    """

    def __init__(self, command: str, args: Sequence[str] = (), timeout: float = DEFAULT_TIMEOUT,
                 refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
                 cwd: str | os.PathLike[str] | None = None) -> None:
        if not isinstance(command, str) or not command.strip():
            raise AuthError(f"CommandAuth command must be a non-empty string, got {command!r}")
        if isinstance(args, str | bytes) or not all(isinstance(a, str) for a in args):
            raise AuthError("CommandAuth args must be a list of strings (the command runs "
                            "without a shell, so one string is not split)")
        self.command = command
        self.args = tuple(args)
        self.timeout = _seconds("timeout", timeout, allow_zero=False)
        self.refresh_interval = _seconds("refresh_interval", refresh_interval, allow_zero=True)
        self.cwd = Path(cwd).expanduser() if cwd is not None else None
        self._token: str | None = None
        self._fetched_at = 0.0
        self._lock = threading.Lock()
        forksafe.register(self)

    def _after_fork(self) -> None:
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        # Arguments may carry secrets (a client secret, a profile name): only their number.
        return (f"CommandAuth(command={self.command!r}, args=<{len(self.args)} args>, "
                f"timeout={self.timeout!r}, refresh_interval={self.refresh_interval!r}, "
                f"cwd={str(self.cwd) if self.cwd else None!r})")

    # --- RenewingAuth ------------------------------------------------------------------------
    def current(self, budget: float | None) -> dict[str, str]:
        with self._locked(budget):
            fresh = self._token is not None and (
                self.refresh_interval == 0
                or time.monotonic() - self._fetched_at < self.refresh_interval)
            if not fresh:
                self._run(budget)
            return self._headers()

    def renew(self, refused: Mapping[str, str] | None, budget: float | None) -> bool:
        with self._locked(budget):
            if refused is not None and self._token is not None and dict(
                    refused) != self._headers():
                return True  # another caller ran the command while this one waited
            old = self._token
            self._run(budget)
            return self._token != old

    # --- running the command -------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    @contextmanager
    def _locked(self, budget: float | None) -> Iterator[None]:
        # Another caller's run takes at most the timeout (and a moment to reap it).
        wait = self.timeout + 2 * _PIPE_GRACE
        if not self._lock.acquire(timeout=wait if budget is None else min(wait, budget)):
            raise AuthError(f"timed out waiting for the token command `{self.command}` that "
                            "another thread runs")
        try:
            yield
        finally:
            self._lock.release()

    def _program(self) -> str:
        import shutil

        path = Path(self.command).expanduser()
        if path.is_absolute():
            return str(path)
        if any(sep and sep in self.command for sep in (os.sep, os.altsep)):
            # "./token.sh", "bin/token": a path, relative to where the command runs.
            return str((self.cwd or Path.cwd()) / path)
        found = shutil.which(self.command)
        if found is None:
            raise AuthError(f"token command `{self.command}` was not found on PATH")
        return found

    def _run(self, budget: float | None) -> None:
        import subprocess  # here, not at import: most programs never run a token command

        limit = self.timeout if budget is None else max(0.0, min(self.timeout, budget))
        try:
            process = subprocess.Popen(
                [self._program(), *self.args], cwd=self.cwd, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                # Its own process group, so a timeout kills whatever it started too.
                start_new_session=os.name != "nt")
        except OSError as exc:
            raise AuthError(f"token command `{self.command}` could not be started: "
                            f"{exc.strerror or type(exc).__name__}") from None
        out, err, timed_out = _collect(process, limit)
        token_line = out.decode("utf-8", "replace").splitlines()[0].strip() if out else ""
        secrets = [s for s in (self._token, token_line) if s]
        where = _last_line(err, secrets)
        if timed_out:
            if limit < self.timeout:
                raise DeadlineExceeded(f"the call's deadline passed while the token command "
                                       f"`{self.command}` ran{where}", budget or limit)
            raise AuthError(f"token command `{self.command}` timed out after "
                            f"{self.timeout:g} s{where}")
        if process.returncode != 0:
            status = (f"was killed by signal {-process.returncode}" if process.returncode < 0
                      else f"exited with status {process.returncode}")
            raise AuthError(f"token command `{self.command}` {status}{where}")
        try:
            out.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthError(f"token command `{self.command}` wrote non-UTF-8 data to its "
                            "standard output") from None
        if not token_line:
            raise AuthError(f"token command `{self.command}` printed no token (the first line "
                            f"of its standard output is empty){where}")
        self._token = checked_secret(token_line, f"the token printed by `{self.command}`")
        self._fetched_at = time.monotonic()


def _collect(process: subprocess.Popen[bytes], limit: float) -> tuple[bytes, bytes, bool]:
    """The head of stdout, the tail of stderr, and whether ``limit`` seconds passed first
    (the command, and its process group, are then killed). Memory stays near MAX_OUTPUT."""
    import subprocess

    out = bytearray()
    err = bytearray()

    def read(pipe: IO[bytes], into: bytearray, keep_head: bool) -> None:
        for chunk in iter(lambda: pipe.read1(65536), b""):  # type: ignore[attr-defined]
            if keep_head:
                if len(into) < MAX_OUTPUT:
                    into += chunk
            else:
                into += chunk
                if len(into) > 2 * MAX_OUTPUT:
                    del into[:-MAX_OUTPUT]

    assert process.stdout is not None and process.stderr is not None
    pipes = (process.stdout, process.stderr)
    readers = [threading.Thread(target=read, args=(pipes[0], out, True), daemon=True),
               threading.Thread(target=read, args=(pipes[1], err, False), daemon=True)]
    for reader in readers:
        reader.start()
    timed_out = False
    try:
        process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(process)
        process.wait()
    for reader, pipe in zip(readers, pipes, strict=True):
        reader.join(_PIPE_GRACE)
        if not reader.is_alive():
            # (A pipe a grandchild still holds open is left to its reader thread.)
            pipe.close()
    return bytes(out[:MAX_OUTPUT]), bytes(err[-MAX_OUTPUT:]), timed_out


def _kill(process: subprocess.Popen[bytes]) -> None:
    import signal

    try:
        if os.name != "nt":
            os.killpg(process.pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            process.kill()
    except OSError:
        process.kill()


def _last_line(err: bytes, secrets: Sequence[str]) -> str:
    """``"; its last stderr line: '...'"``, scrubbed, or "" when it wrote nothing."""
    lines = [line.strip() for line in err.decode("utf-8", "replace").splitlines()
             if line.strip()]
    if not lines:
        return ""
    line = _CREDENTIAL_TEXT.sub(lambda m: m.group(1) + REDACTED, scrub_text(lines[-1], secrets))
    if len(line) > 200:
        line = line[:200] + "…"
    return f"; its last stderr line: {line!r}"


__all__ = ["DEFAULT_REFRESH_INTERVAL", "DEFAULT_TIMEOUT", "CommandAuth"]
