"""Shared fixtures: the embedded server on 127.0.0.1, the request most tests send and the one
way tests build a client (:func:`make_client`); and the one rule for tests that read
``../shared`` (the real cassettes, the wire reference)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from codexapi import Client, Provider, ResponsesRequest, RetryPolicy, WireApi
from codexapi.http.transport import Transport
from codexapi.server import EmbeddedServer

#: The repository's root.
ROOT = Path(__file__).resolve().parents[1]
#: ``../shared`` beside the repository (``$CODEXAPI_SHARED`` points elsewhere, e.g. from a
#: git worktree): public real cassettes and the wire reference, read in place, never copied.
SHARED = Path(os.environ.get("CODEXAPI_SHARED") or Path(__file__).resolve().parents[2] / "shared")


def under_ci(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this run is CI's (``CI`` set, as every CI service sets it)."""
    return environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_shared(name: str, *, shared: Path | None = None,
                   environ: Mapping[str, str] = os.environ) -> Path:
    """``../shared/<name>``, or skip the test when it is missing (a bare clone). Under CI a
    missing folder fails the test instead: conformance must never silently stop running."""
    path = (SHARED if shared is None else shared) / name
    if path.is_dir():
        return path
    reason = (f"needs ../shared/{name} beside the repository, and {path} is missing (a bare "
              "clone; set CODEXAPI_SHARED to its location)")
    if under_ci(environ):
        pytest.fail(f"{reason}; under CI this is a failure, not a skip", pytrace=False)
    pytest.skip(reason)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "shared(*names): the test reads ../shared/<name> for "
                            "each name; skipped on a bare clone, failed under CI")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("shared"):
        for name in mark.args:
            require_shared(name)


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                  ) -> None:
    # Tests never pick up the developer's real credentials, Codex home or proxies.
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_BASE_URL", "CODEXAPI_PLUGINS",
                 "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy",
                 "all_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
                 "CODEX_CA_CERTIFICATE", "CODEX_REFRESH_TOKEN_URL_OVERRIDE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CODEX_HOME", str(tmp_path_factory.mktemp("codex-home")))
    # `codexapi chat` saves conversations; never in the developer's data directory.
    monkeypatch.setenv("CODEXAPI_STATE_DIR", str(tmp_path_factory.mktemp("codexapi-state")))


@pytest.fixture(scope="session")
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as srv:
        yield srv


def make_request(text: str = "Hello", model: str = "m", **fields: Any) -> ResponsesRequest:
    """A Responses request saying ``text`` to ``model``, with any other request ``fields``."""
    return ResponsesRequest(model=model, input=text, **fields)


#: The request most tests send (the embedded server answers it "You said: Hello").
REQ = make_request()


def make_client(target: EmbeddedServer | str = "https://example.test/v1",
                wire: str = WireApi.RESPONSES, *, name: str = "embedded",
                retry: RetryPolicy | int | None = None,
                stream_idle_timeout: float | None = 10.0, auth: Any = None,
                plugins: Iterable[Any] = (), transport: Transport | None = None,
                sleep: Callable[[float], None] | None = None, load_entrypoints: bool = False,
                **provider: Any) -> Client:
    """The one way tests build a :class:`Client`.

    ``target`` is the embedded server or a base URL (the default suits a ``transport`` that
    never connects). ``retry`` is a policy, or a number of attempts with no delay between them;
    by default one try. ``stream_idle_timeout`` defaults to 10 s so a broken test fails rather
    than hangs; None keeps the Provider's own default. Other keywords are Provider fields.
    """
    base_url = target if isinstance(target, str) else target.base_url
    if retry is None:
        retry = RetryPolicy.never()
    elif isinstance(retry, int):
        retry = RetryPolicy(max_attempts=retry, base_delay=0.0)
    if stream_idle_timeout is not None:
        provider["stream_idle_timeout"] = stream_idle_timeout
    client_kw: dict[str, Any] = {}
    if transport is not None:
        client_kw["transport"] = transport
    if sleep is not None:
        client_kw["sleep"] = sleep
    return Client(Provider(name=name, base_url=base_url, wire=wire, retry=retry, **provider),
                  auth=auth, plugins=plugins, load_entrypoints=load_entrypoints, **client_kw)


@pytest.fixture
def client(server: EmbeddedServer) -> Iterator[Client]:
    with make_client(server) as c:
        yield c
