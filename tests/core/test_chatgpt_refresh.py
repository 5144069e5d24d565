"""ChatGPT sign-in that refreshes itself: ``CodexAuthFile`` against a token endpoint and the
embedded server, both on 127.0.0.1 (``CODEX_REFRESH_TOKEN_URL_OVERRIDE`` points Codex's
refresh there). Expiry and 401 refreshes, the write-back, one token request for N threads in
M processes, the refusals that mean `codex login`, retryable failures, FedRAMP, no token in
any log."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support.answer_server import Answer, AnswerServer, Seen

from codexapi import (
    AuthError,
    Client,
    CodexAuthFile,
    DeadlineExceeded,
    Provider,
    ResponsesRequest,
    RetryPolicy,
    TransportError,
)
from codexapi.server import EmbeddedServer

REQUEST = ResponsesRequest(model="m", input="Hello")
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"


def jwt(claims: dict[str, Any]) -> str:
    def part(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


def access(name: str, expires_in: float) -> str:
    """An access token JWT that expires ``expires_in`` seconds from now."""
    return jwt({"exp": int(time.time() + expires_in), "name": name})


OLD = access("old", -100)
NEW = access("new", 3600)
ID_TOKEN = jwt({"https://api.openai.com/auth": {"chatgpt_account_id": "acct-1"}})
NEW_ID = jwt({"https://api.openai.com/auth": {"chatgpt_account_id": "acct-1", "v": 2}})


def write_auth(path: Path, access_token: str = OLD, refresh_token: str = "rt-old-123456",
               **extra: Any) -> Path:
    data = {"OPENAI_API_KEY": None, "auth_mode": "chatgpt",
            "tokens": {"id_token": ID_TOKEN, "access_token": access_token,
                       "refresh_token": refresh_token, "account_id": "acct-1"},
            "last_refresh": "2025-01-01T00:00:00Z", **extra}
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def granted(access_token: str = NEW, refresh_token: str = "rt-new-654321",
            id_token: str = NEW_ID, delay: float = 0.0) -> Answer:
    return Answer(200, {"access_token": access_token, "refresh_token": refresh_token,
                        "id_token": id_token}, delay=delay)


def refused(code: str, status: int = 401) -> Answer:
    return Answer(status, {"error": {"code": code, "message": f"refresh failed: {code}"}})


@pytest.fixture
def auth_path(tmp_path: Path) -> Path:
    return write_auth(tmp_path / "auth.json")


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., AnswerServer]]:
    """``endpoint(answer, ...)``: a token endpoint answering each request with the next answer
    (the last one repeats); Codex's override variable points at it."""
    servers: list[AnswerServer] = []

    def make(*answers: Answer) -> AnswerServer:
        queue = list(answers)

        def answer(_: Seen) -> Answer:
            return queue.pop(0) if len(queue) > 1 else queue[0]

        server = AnswerServer(answer).__enter__()
        servers.append(server)
        monkeypatch.setenv("CODEX_REFRESH_TOKEN_URL_OVERRIDE", server.url + "/oauth/token")
        return server

    yield make
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture(scope="module")
def api() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as server:
        yield server


@pytest.fixture
def srv(api: EmbeddedServer) -> Iterator[EmbeddedServer]:
    api.requests.clear()
    api.httpd.refused = 0
    api.api_keys = {NEW}
    yield api
    api.api_keys = None


def client(server: EmbeddedServer, auth: CodexAuthFile, attempts: int = 1) -> Client:
    provider = Provider(base_url=server.base_url,
                        retry=RetryPolicy(max_attempts=attempts, base_delay=0.0))
    return Client(provider, auth=auth, load_entrypoints=False)


def bearer(server: EmbeddedServer) -> list[str]:
    """The tokens of the requests the server accepted (refused ones are only counted, in
    ``server.httpd.refused``)."""
    return [{k.lower(): v for k, v in h.items()}["authorization"]
            for _, _, h, _ in server.requests]


# --- when a refresh happens ------------------------------------------------------------------


def test_an_expired_token_is_refreshed_before_sending_and_written_back(
        auth_path: Path, endpoint: Callable[..., AnswerServer], srv: EmbeddedServer) -> None:
    os.chmod(auth_path, 0o640)
    token = endpoint(granted())
    with client(srv, CodexAuthFile(auth_path)) as c:
        assert c.stream(REQUEST).collect().text == "You said: Hello"
    assert bearer(srv) == [f"Bearer {NEW}"]
    # The token endpoint got the refresh request, and only that.
    [seen] = token.seen
    assert (seen.method, seen.path) == ("POST", "/oauth/token")
    assert seen.headers["content-type"] == "application/json"
    assert "authorization" not in seen.headers and "chatgpt-account-id" not in seen.headers
    assert seen.json() == {"client_id": CLIENT_ID, "grant_type": "refresh_token",
                           "refresh_token": "rt-old-123456"}
    # The file holds the new tokens, its other entries and its mode are kept, and the write
    # left no temporary file behind.
    data = json.loads(auth_path.read_text())
    assert data["tokens"] == {"id_token": NEW_ID, "access_token": NEW,
                              "refresh_token": "rt-new-654321", "account_id": "acct-1"}
    assert data["auth_mode"] == "chatgpt" and data["OPENAI_API_KEY"] is None
    refreshed = datetime.fromisoformat(data["last_refresh"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - refreshed).total_seconds()) < 60
    assert stat.S_IMODE(auth_path.stat().st_mode) == 0o640
    assert sorted(p.name for p in auth_path.parent.iterdir()) == ["auth.json", "auth.json.lock"]


@pytest.mark.parametrize(("expires_in", "refreshes"), [(10, True), (120, False)])
def test_a_token_about_to_expire_is_refreshed_within_the_skew(
        tmp_path: Path, endpoint: Callable[..., AnswerServer], expires_in: float,
        refreshes: bool) -> None:
    soon = access("soon", expires_in)
    auth = CodexAuthFile(write_auth(tmp_path / "auth.json", soon))
    token = endpoint(granted())
    expected = NEW if refreshes else soon
    assert auth.headers()["Authorization"] == f"Bearer {expected}"
    assert len(token.seen) == int(refreshes)


def test_a_401_refreshes_and_resends(tmp_path: Path, endpoint: Callable[..., AnswerServer],
                                     srv: EmbeddedServer) -> None:
    valid_but_revoked = access("revoked", 3600)
    auth = CodexAuthFile(write_auth(tmp_path / "auth.json", valid_but_revoked))
    token = endpoint(granted())
    with client(srv, auth) as c:
        assert c.stream(REQUEST).collect().text == "You said: Hello"
    assert bearer(srv) == [f"Bearer {NEW}"] and srv.httpd.refused == 1
    assert len(token.seen) == 1


def test_a_token_another_process_refreshed_is_used_without_sending(
        tmp_path: Path, endpoint: Callable[..., AnswerServer], srv: EmbeddedServer) -> None:
    mine = access("mine", 3600)
    path = write_auth(tmp_path / "auth.json", mine)
    token = endpoint(granted(access("never-issued", 3600)))
    auth = CodexAuthFile(path)
    assert auth.headers()["Authorization"] == f"Bearer {mine}"
    # Another Codex session refreshed: the file holds its new tokens, the server wants them.
    write_auth(path, NEW, "rt-theirs-000000")
    with client(srv, auth) as c:
        assert c.stream(REQUEST).collect().text == "You said: Hello"
    assert bearer(srv) == [f"Bearer {NEW}"] and srv.httpd.refused == 1  # (mine was refused)
    assert token.seen == []  # its refresh token was not spent a second time
    # The same for an expired token: the file's fresh one is used as it is.
    path2 = write_auth(tmp_path / "auth2.json", OLD)
    auth2 = CodexAuthFile(path2)
    auth2.renew(None, None)  # loads OLD without touching the endpoint (not stale-checked)
    write_auth(path2, NEW, "rt-theirs-000000")
    assert auth2.headers()["Authorization"] == f"Bearer {NEW}"
    assert token.seen == []


def test_api_key_files_are_read_again_after_a_401_and_never_refreshed(
        tmp_path: Path, endpoint: Callable[..., AnswerServer], srv: EmbeddedServer) -> None:
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"OPENAI_API_KEY": "sk-old-key-1"}))
    token = endpoint(granted())
    srv.api_keys = {"sk-new-key-2"}
    auth = CodexAuthFile(path)
    auth.headers()
    path.write_text(json.dumps({"OPENAI_API_KEY": "sk-new-key-2"}))
    with client(srv, auth) as c:
        c.stream(REQUEST).collect()
    assert bearer(srv) == ["Bearer sk-new-key-2"] and srv.httpd.refused == 1
    assert token.seen == []


# --- one token request for N threads in M processes ---------------------------------------------

CHILD = """
import sys, threading
from codexapi import CodexAuthFile
path, go, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
auth = CodexAuthFile(path)
print("ready", flush=True)
sys.stdin.readline()
got = []
workers = [threading.Thread(target=lambda: got.append(auth.headers()["Authorization"]))
           for _ in range(threads)]
for w in workers: w.start()
for w in workers: w.join()
print("\\n".join(got), flush=True)
"""


def test_n_threads_in_m_processes_send_one_token_request(
        auth_path: Path, endpoint: Callable[..., AnswerServer], tmp_path: Path) -> None:
    threads, processes = 6, 4
    # A slow endpoint keeps the first refresh going while everyone else asks.
    token = endpoint(granted(delay=0.5))
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    children = [subprocess.Popen([sys.executable, str(script), str(auth_path), "go",
                                  str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 text=True) for _ in range(processes)]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        # Threads in this process too, each with its own CodexAuthFile on the same file.
        here: list[str] = []
        local = [threading.Thread(target=lambda: here.append(
            CodexAuthFile(auth_path).headers()["Authorization"])) for _ in range(threads)]
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        for t in local:
            t.start()
        outputs = [child.communicate(timeout=60)[0].split() for child in children]
        for t in local:
            t.join(60)
    finally:
        for child in children:
            child.kill() if child.poll() is None else None
    assert [child.returncode for child in children] == [0] * processes
    got = [line for out in outputs for line in out if line != "Bearer"] + [
        h.split()[1] for h in here]
    assert len(got) == threads * (processes + 1)
    assert set(got) == {NEW}
    assert len(token.seen) == 1


def test_threads_sharing_one_auth_after_a_401_renew_once(
        tmp_path: Path, endpoint: Callable[..., AnswerServer]) -> None:
    stale = access("stale", 3600)
    auth = CodexAuthFile(write_auth(tmp_path / "auth.json", stale))
    refused_headers = auth.headers()
    token = endpoint(granted(delay=0.3))
    results: list[bool] = []
    workers = [threading.Thread(target=lambda: results.append(
        auth.renew(refused_headers, None))) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert results == [True] * 8 and len(token.seen) == 1
    assert auth.headers()["Authorization"] == f"Bearer {NEW}"


# --- failures --------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["refresh_token_expired", "refresh_token_reused",
                                  "refresh_token_invalidated"])
def test_a_refused_refresh_says_sign_in_again_and_is_never_retried(
        auth_path: Path, endpoint: Callable[..., AnswerServer], srv: EmbeddedServer,
        code: str) -> None:
    token = endpoint(refused(code))
    auth = CodexAuthFile(auth_path)
    with client(srv, auth, attempts=4) as c:
        with pytest.raises(AuthError, match="codex login") as info:
            c.stream(REQUEST)
        assert not info.value.retryable and str(auth_path) in str(info.value)
        # Remembered for this refresh token: the next call fails without asking again.
        with pytest.raises(AuthError, match="codex login"):
            c.stream(REQUEST)
    assert len(token.seen) == 1 and srv.requests == []
    # After `codex login` (a new file) it works again.
    write_auth(auth_path, NEW, "rt-after-login-1")
    with client(srv, auth) as c:
        assert c.stream(REQUEST).collect().text == "You said: Hello"


def test_a_401_from_the_token_endpoint_without_a_known_code_is_final_too(
        auth_path: Path, endpoint: Callable[..., AnswerServer]) -> None:
    token = endpoint(Answer(401, {"error": "invalid_grant"}))
    with pytest.raises(AuthError, match="codex login"):
        CodexAuthFile(auth_path).headers()
    assert len(token.seen) == 1


@pytest.mark.parametrize("status", [500, 503])
def test_a_5xx_is_a_retryable_error_of_the_call(
        auth_path: Path, endpoint: Callable[..., AnswerServer], srv: EmbeddedServer,
        status: int) -> None:
    token = endpoint(Answer(status, {"error": {"message": "try later"}}), granted())
    with client(srv, CodexAuthFile(auth_path), attempts=3) as c:
        assert c.stream(REQUEST).collect().text == "You said: Hello"
    assert len(token.seen) == 2
    write_auth(auth_path)
    token2 = endpoint(Answer(status, {"error": {"message": "try later"}}))
    with client(srv, CodexAuthFile(auth_path), attempts=1) as c, pytest.raises(
            TransportError, match=f"answered {status}") as info:
        c.stream(REQUEST)
    assert info.value.retryable and len(token2.seen) == 1
    assert json.loads(auth_path.read_text())["tokens"]["access_token"] == OLD


def test_an_unreachable_token_endpoint_is_a_retryable_transport_error(
        auth_path: Path, monkeypatch: pytest.MonkeyPatch, srv: EmbeddedServer) -> None:
    with AnswerServer(lambda _: Answer()) as gone:
        url = gone.url
    monkeypatch.setenv("CODEX_REFRESH_TOKEN_URL_OVERRIDE", url + "/oauth/token")
    slept: list[float] = []
    provider = Provider(base_url=srv.base_url, retry=RetryPolicy(max_attempts=3))
    with Client(provider, auth=CodexAuthFile(auth_path), sleep=slept.append,
                load_entrypoints=False) as c, pytest.raises(TransportError) as info:
        c.stream(REQUEST)
    assert info.value.retryable and "refreshing the ChatGPT access token" in str(info.value)
    assert len(slept) == 2 and srv.requests == []


def test_the_call_deadline_bounds_the_refresh(
        auth_path: Path, endpoint: Callable[..., AnswerServer], srv: EmbeddedServer) -> None:
    endpoint(granted(delay=3.0))
    started = time.monotonic()
    with client(srv, CodexAuthFile(auth_path)) as c, pytest.raises(DeadlineExceeded):
        c.stream(REQUEST, deadline=0.5)
    assert time.monotonic() - started < 2.5


def test_no_token_reaches_a_log_an_error_or_a_repr(
        auth_path: Path, endpoint: Callable[..., AnswerServer], srv: EmbeddedServer,
        caplog: pytest.LogCaptureFixture) -> None:
    endpoint(granted(), Answer(400, {"error": {"code": "invalid_request",
                                               "message": "bad token rt-new-654321"}}))
    auth = CodexAuthFile(auth_path)
    with caplog.at_level(logging.DEBUG), client(srv, auth) as c:
        c.stream(REQUEST).collect()
        srv.api_keys = {"something-else"}
        with pytest.raises(AuthError) as info:
            c.stream(REQUEST)
    shown = caplog.text + str(info.value) + repr(info.value) + repr(auth)
    for secret in (OLD, NEW, NEW_ID, ID_TOKEN, "rt-old-123456", "rt-new-654321"):
        assert secret not in shown
    assert "refreshing the ChatGPT access token" in caplog.text
    assert "<redacted>" in str(info.value)  # the server's echo, scrubbed


@pytest.mark.parametrize(("fedramp", "sent"), [(True, "true"), (False, None), (None, None)])
def test_fedramp_accounts_send_the_fedramp_header(
        tmp_path: Path, srv: EmbeddedServer, fedramp: bool | None, sent: str | None) -> None:
    claims: dict[str, Any] = {"chatgpt_account_id": "acct-f"}
    if fedramp is not None:
        claims["chatgpt_account_is_fedramp"] = fedramp
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"tokens": {
        "id_token": jwt({"https://api.openai.com/auth": claims}), "access_token": NEW,
        "refresh_token": "rt"}}))
    with client(srv, CodexAuthFile(path)) as c:
        c.stream(REQUEST).collect()
    headers = {k.lower(): v for k, v in srv.requests[-1][2].items()}
    assert headers.get("x-openai-fedramp") == sent
    assert headers["chatgpt-account-id"] == "acct-f"
