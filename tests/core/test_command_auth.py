"""Command-backed auth (Codex's ``[model_providers.<id>.auth]``): a token command written by
the test, run against the embedded server on 127.0.0.1 with its api-key check on."""

from __future__ import annotations

import logging
import stat
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codexapi import (
    ApiError,
    AuthError,
    Client,
    CommandAuth,
    DeadlineExceeded,
    Provider,
    ResponsesRequest,
    RetryPolicy,
)
from codexapi.server import EmbeddedServer

REQUEST = ResponsesRequest(model="m", input="Hello")

# The token command: counts its runs in STATE/runs and behaves as STATE/mode says.
TOKEN_COMMAND = r"""
import sys, time, pathlib
state = pathlib.Path(sys.argv[1])
with open(state / "runs", "a") as f:
    f.write("run\n")
n = len((state / "runs").read_text().splitlines())
(state / "args").write_text("\n".join(sys.argv[2:]))
(state / "cwd").write_text(str(pathlib.Path.cwd()))
mode = (state / "mode").read_text().strip() if (state / "mode").exists() else "ok"
if mode.startswith("slow:"):
    time.sleep(float(mode[5:]))
if mode == "hang":
    sys.stderr.write("waiting for the vault\nstill waiting, token=tok-secret-9\n")
    sys.stderr.flush()
    time.sleep(60)
if mode == "fail":
    sys.stderr.write("vault: permission denied\nvault: bearer tok-leaked-77 refused\n")
    sys.exit(3)
if mode == "empty":
    print("")
    print("tok-on-line-two")
    sys.exit(0)
print(f"  tok-{n}  ")
print("a second line that is not the token")
"""


@pytest.fixture
def state(tmp_path: Path) -> Path:
    path = tmp_path / "state"
    path.mkdir()
    (tmp_path / "token_command.py").write_text(TOKEN_COMMAND)
    return path


def command(state: Path, *extra: str, **kw: float) -> CommandAuth:
    return CommandAuth(sys.executable, [str(state.parent / "token_command.py"), str(state),
                                        *extra], **kw)  # type: ignore[arg-type]


def runs(state: Path) -> int:
    path = state / "runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


@pytest.fixture(scope="module")
def api() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as server:
        yield server


@pytest.fixture
def srv(api: EmbeddedServer) -> Iterator[EmbeddedServer]:
    api.requests.clear()
    api.httpd.refused = 0
    api.api_keys = {"tok-1"}
    yield api
    api.api_keys = None


def client(server: EmbeddedServer, auth: CommandAuth) -> Client:
    return Client(Provider(base_url=server.base_url, retry=RetryPolicy(max_attempts=1)),
                  auth=auth, load_entrypoints=False)


def bearer(server: EmbeddedServer) -> list[str]:
    """The tokens of the requests the server accepted (refused ones are only counted, in
    ``server.httpd.refused``)."""
    return [{k.lower(): v for k, v in h.items()}["authorization"]
            for _, _, h, _ in server.requests]


def test_the_first_stdout_line_trimmed_is_the_bearer_token_and_is_cached(
        state: Path, srv: EmbeddedServer) -> None:
    with client(srv, command(state)) as c:
        for _ in range(3):
            assert c.stream(REQUEST).collect().text == "You said: Hello"
    assert bearer(srv) == ["Bearer tok-1"] * 3 and runs(state) == 1


def test_the_token_is_renewed_after_its_refresh_interval(state: Path) -> None:
    auth = command(state, refresh_interval=0.3)
    assert auth.headers() == {"Authorization": "Bearer tok-1"}
    assert auth.headers() == {"Authorization": "Bearer tok-1"} and runs(state) == 1
    time.sleep(0.35)
    assert auth.headers() == {"Authorization": "Bearer tok-2"} and runs(state) == 2


def test_refresh_interval_zero_runs_again_only_after_a_401(state: Path,
                                                           srv: EmbeddedServer) -> None:
    auth = command(state, refresh_interval=0)
    with client(srv, auth) as c:
        c.stream(REQUEST).collect()
        time.sleep(0.05)
        c.stream(REQUEST).collect()
        assert runs(state) == 1
        srv.api_keys = {"tok-2"}  # the gateway rotated its tokens
        assert c.stream(REQUEST).collect().text == "You said: Hello"
    # The third request (tok-1) was refused, then re-sent with the command's new token.
    assert bearer(srv) == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    assert srv.httpd.refused == 1 and runs(state) == 2


def test_a_401_runs_the_command_again_and_resends_once(
        state: Path, srv: EmbeddedServer) -> None:
    (state / "mode").write_text("ok")
    srv.api_keys = {"never"}
    with client(srv, command(state)) as c, pytest.raises(ApiError) as info:
        c.stream(REQUEST)
    # It ran again after the 401 and printed a new token (tok-2), which was tried once.
    assert info.value.status == 401 and runs(state) == 2
    assert bearer(srv) == [] and srv.httpd.refused == 2


def test_concurrent_callers_share_one_run(state: Path) -> None:
    (state / "mode").write_text("slow:0.4")
    auth = command(state)
    got: list[str] = []
    workers = [threading.Thread(target=lambda: got.append(auth.headers()["Authorization"]))
               for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert got == ["Bearer tok-1"] * 8 and runs(state) == 1
    # After a 401 seen by several callers at once, one run renews for all of them.
    refused = {"Authorization": "Bearer tok-1"}
    renewed: list[bool] = []
    workers = [threading.Thread(target=lambda: renewed.append(auth.renew(refused, None)))
               for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert renewed == [True] * 8 and runs(state) == 2


def test_a_command_that_times_out_is_an_auth_error_quoting_its_last_stderr_line(
        state: Path) -> None:
    (state / "mode").write_text("hang")
    auth = command(state, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(AuthError) as info:
        auth.headers()
    assert time.monotonic() - started < 3
    message = str(info.value)
    assert f"`{sys.executable}` timed out after 0.5 s" in message
    assert "still waiting, token=<redacted>" in message and "tok-secret-9" not in message


def test_a_failing_command_is_an_auth_error_naming_it(state: Path, srv: EmbeddedServer,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    (state / "mode").write_text("fail")
    with caplog.at_level(logging.DEBUG), client(srv, command(state)) as c, pytest.raises(
            AuthError) as info:
        c.stream(REQUEST)
    message = str(info.value)
    assert f"token command `{sys.executable}` exited with status 3" in message
    assert "its last stderr line: 'vault: bearer <redacted> refused'" in message
    assert "tok-leaked-77" not in message + caplog.text and not info.value.retryable
    assert srv.requests == []


def test_an_empty_first_line_is_an_auth_error(state: Path) -> None:
    (state / "mode").write_text("empty")
    with pytest.raises(AuthError, match="printed no token"):
        command(state).headers()


def test_a_command_not_on_path_is_an_auth_error(tmp_path: Path) -> None:
    with pytest.raises(AuthError, match="`no-such-token-helper` was not found on PATH"):
        CommandAuth("no-such-token-helper").headers()
    with pytest.raises(AuthError, match="could not be started"):
        CommandAuth("./missing-helper", cwd=tmp_path).headers()


def test_arguments_reach_the_command_without_a_shell(state: Path) -> None:
    literal = ["$HOME", "a;b", "`id`", "two words"]
    command(state, *literal).headers()
    assert (state / "args").read_text().splitlines() == literal


def test_a_relative_command_runs_from_cwd(state: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    (work / "bin").mkdir(parents=True)
    helper = work / "bin" / "token-helper"
    helper.write_text(f"#!/bin/sh\nexec {sys.executable} {state.parent / 'token_command.py'} "
                      f"{state}\n")
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    auth = CommandAuth("bin/token-helper", cwd=work)
    assert auth.headers() == {"Authorization": "Bearer tok-1"}
    assert Path((state / "cwd").read_text()).resolve() == work.resolve()


def test_the_call_deadline_bounds_the_command(state: Path, srv: EmbeddedServer) -> None:
    (state / "mode").write_text("slow:5")
    started = time.monotonic()
    with client(srv, command(state, timeout=30)) as c, pytest.raises(DeadlineExceeded):
        c.stream(REQUEST, deadline=0.5)
    assert time.monotonic() - started < 3


def test_repr_shows_the_command_not_its_arguments(state: Path) -> None:
    auth = command(state, "--client-secret", "s3cr3t-value")
    auth.headers()
    text = repr(auth)
    assert sys.executable in text and "s3cr3t" not in text and "tok-1" not in text


@pytest.mark.parametrize(("kw", "problem"), [
    ({"command": ""}, "non-empty string"),
    ({"command": "x", "args": "a b"}, "list of strings"),
    ({"command": "x", "timeout": 0}, "timeout"),
    ({"command": "x", "refresh_interval": -1}, "refresh_interval"),
    ({"command": "x", "timeout": float("nan")}, "timeout"),
])
def test_bad_settings_are_auth_errors(kw: dict[str, object], problem: str) -> None:
    with pytest.raises(AuthError, match=problem):
        CommandAuth(**kw)  # type: ignore[arg-type]

