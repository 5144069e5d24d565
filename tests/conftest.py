"""Shared fixtures: the embedded server on 127.0.0.1 and clients pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codexapi import Client, Provider, RetryPolicy, WireApi
from codexapi.server import EmbeddedServer


@pytest.fixture(autouse=True)
def _hermetic_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
                  ) -> None:
    # Tests never pick up the developer's real credentials, Codex home or proxies.
    for name in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "OPENAI_BASE_URL", "CODEXAPI_PLUGINS",
                 "HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy",
                 "all_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE",
                 "CODEX_CA_CERTIFICATE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CODEX_HOME", str(tmp_path_factory.mktemp("codex-home")))
    # `codexapi chat` saves conversations; never in the developer's data directory.
    monkeypatch.setenv("CODEXAPI_STATE_DIR", str(tmp_path_factory.mktemp("codexapi-state")))


@pytest.fixture(scope="session")
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as srv:
        yield srv


def make_client(server: EmbeddedServer, wire: WireApi = WireApi.RESPONSES, **kw: object
                ) -> Client:
    provider = Provider(name="embedded", base_url=server.base_url, wire=wire,
                        retry=RetryPolicy(max_attempts=1), stream_idle_timeout=10.0)
    return Client(provider, load_entrypoints=False, **kw)  # type: ignore[arg-type]


@pytest.fixture
def client(server: EmbeddedServer) -> Iterator[Client]:
    with make_client(server) as c:
        yield c
