"""Proxies: the environment variables, NO_PROXY rules, a provider's own proxy, and real
traffic through a forward proxy on 127.0.0.1 (absolute-URI for http, CONNECT for https)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REQ, make_client
from support.proxy_server import ProxyServer
from support.tls_server import ScratchCA, https_server

from codexapi import (
    Client,
    ConfigError,
    Provider,
    TransportError,
)
from codexapi.http.proxy import ProxySettings, bypasses, parse_proxy_url
from codexapi.server import EmbeddedServer


@pytest.fixture
def proxy() -> Iterator[ProxyServer]:
    with ProxyServer() as p:
        yield p


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chat(c: Client) -> str:
    with c:
        return c.stream(REQ).collect().text


# --- NO_PROXY rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(("no_proxy", "host", "port", "expected"), [
    ("example.com", "example.com", 443, True),
    ("example.com", "api.example.com", 443, True),     # a domain covers its subdomains
    (".example.com", "api.example.com", 443, True),
    (".example.com", "example.com", 443, True),
    ("*.example.com", "a.b.example.com", 443, True),
    ("example.com", "notexample.com", 443, False),     # suffix on a label boundary only
    ("example.com", "example.com.evil.net", 443, False),
    ("EXAMPLE.com", "Api.Example.COM", 443, True),     # case-insensitive
    ("example.com", "example.com.", 443, True),        # trailing dot of an FQDN
    ("127.0.0.1", "127.0.0.1", 8000, True),
    ("0.0.1", "127.0.0.1", 8000, False),               # addresses never match as suffixes
    ("127.0.0.1", "localhost", 8000, False),           # no name resolution
    ("localhost", "127.0.0.1", 8000, False),
    ("localhost", "localhost", 8000, True),
    ("10.0.0.0/8", "10.20.30.40", 443, True),
    ("10.0.0.0/8", "11.0.0.1", 443, False),
    ("10.0.0.0/8", "ten.example", 443, False),
    ("::1", "[::1]", 443, True),
    ("[::1]:8443", "::1", 8443, True),
    ("[::1]:8443", "::1", 443, False),
    ("fd00::/8", "fd12::1", 443, True),
    ("example.com:8443", "example.com", 8443, True),   # a port limits the entry
    ("example.com:8443", "example.com", 443, False),
    ("*", "anything.at.all", 1, True),
    ("", "example.com", 443, False),
])
def test_no_proxy_rules(no_proxy: str, host: str, port: int, expected: bool) -> None:
    entries = tuple(no_proxy.lower().replace(",", " ").split())
    assert bypasses(entries, host, port) is expected


def test_no_proxy_lists_split_on_commas_and_spaces() -> None:
    s = ProxySettings.from_env({"HTTPS_PROXY": "http://p:1",
                                "NO_PROXY": "a.example, b.example ,c.example 10.0.0.0/8"})
    assert s.no_proxy == ("a.example", "b.example", "c.example", "10.0.0.0/8")
    assert s.proxy_for("https://x.c.example/v1") is None
    assert s.proxy_for("https://10.1.2.3/v1") is None
    proxy = s.proxy_for("https://d.example/v1")
    assert proxy is not None and proxy.url == "http://p:1"


# --- which variable -----------------------------------------------------------------------------


def test_scheme_specific_variables_then_all_proxy() -> None:
    s = ProxySettings.from_env({"HTTPS_PROXY": "http://secure:1", "ALL_PROXY": "http://all:2"})
    https, http = s.proxy_for("https://h/v1"), s.proxy_for("http://h/v1")
    assert https is not None and (https.url, https.source) == ("http://secure:1", "HTTPS_PROXY")
    assert http is not None and (http.url, http.source) == ("http://all:2", "ALL_PROXY")


def test_lower_case_wins_and_blank_means_unset() -> None:
    s = ProxySettings.from_env({"https_proxy": "http://lower:1", "HTTPS_PROXY": "http://up:2",
                                "http_proxy": " ", "HTTP_PROXY": "http://up-http:3"})
    https, http = s.proxy_for("https://h"), s.proxy_for("http://h")
    assert https is not None and https.source == "https_proxy"
    assert http is not None and http.source == "HTTP_PROXY"


def test_http_proxy_is_ignored_under_cgi() -> None:
    # httpoxy: under CGI, HTTP_PROXY comes from the client's "Proxy:" header.
    s = ProxySettings.from_env({"HTTP_PROXY": "http://evil:1", "REQUEST_METHOD": "GET"})
    assert s.proxy_for("http://h/v1") is None


def test_no_variables_no_proxy() -> None:
    assert not ProxySettings.from_env({}).enabled


def test_proxy_url_forms() -> None:
    p = parse_proxy_url("proxy.corp:3128", "HTTPS_PROXY")
    assert p.url == "http://proxy.corp:3128"  # no scheme means http://, as curl
    assert parse_proxy_url("https://proxy.corp", "X").url == "https://proxy.corp:443"
    auth = parse_proxy_url("http://me:p%40ss@proxy.corp:8080", "X")
    assert auth.url == "http://proxy.corp:8080"
    assert auth.headers == {"proxy-authorization": "Basic bWU6cEBzcw=="}  # me:p@ss
    assert "p@ss" not in repr(auth) and "bWU6" not in repr(auth)


@pytest.mark.parametrize("value", [
    "http://:3128", "http://proxy:port", "socks5://proxy:1080", "ftp://proxy", "http://",
    "http://proxy:99999", "http://proxy:3128/some/path", "http://pro xy:1",
])
def test_malformed_proxy_url_names_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                value: str) -> None:
    monkeypatch.setenv("HTTPS_PROXY", value)
    with pytest.raises(ConfigError) as info:
        Client(Provider(base_url="https://api.example/v1"), load_entrypoints=False)
    assert "HTTPS_PROXY" in str(info.value) and "proxy URL" in str(info.value)


def test_malformed_proxy_url_keeps_its_password_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALL_PROXY", "ftp://me:hunter22@proxy:1")
    with pytest.raises(ConfigError) as info:
        Client(Provider(base_url="https://api.example/v1"), load_entrypoints=False)
    assert "ALL_PROXY" in str(info.value) and "hunter22" not in str(info.value)


def test_malformed_provider_proxy_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"Provider\.proxy"):
        Client(Provider(base_url="https://api.example/v1", proxy="http://:1"),
               load_entrypoints=False)


# --- real traffic -------------------------------------------------------------------------------


def test_http_target_goes_through_http_proxy(server: EmbeddedServer, proxy: ProxyServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    assert chat(make_client(server.base_url)) == "You said: Hello"
    assert proxy.requests == [("POST", f"{server.base_url}/responses")]


def test_no_proxy_bypasses_the_proxy(server: EmbeddedServer, proxy: ProxyServer,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
    assert chat(make_client(server.base_url)) == "You said: Hello"
    assert proxy.requests == []


def test_no_proxy_for_another_port_still_proxies(server: EmbeddedServer, proxy: ProxyServer,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    monkeypatch.setenv("no_proxy", f"127.0.0.1:{dead_port()}")
    assert chat(make_client(server.base_url)) == "You said: Hello"
    assert len(proxy.requests) == 1


def test_https_proxy_does_not_apply_to_http(server: EmbeddedServer, proxy: ProxyServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    assert chat(make_client(server.base_url)) == "You said: Hello"
    assert proxy.requests == []


def test_https_target_is_tunnelled_with_connect(proxy: ProxyServer, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ca = ScratchCA(tmp_path)
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    with https_server(ca) as tls:
        # TLS runs end to end through the tunnel: the target's certificate is still checked.
        assert chat(make_client(tls.base_url, ca_bundle=str(ca.ca_path))) == "You said: Hello"
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            chat(make_client(tls.base_url))
    assert proxy.requests == [("CONNECT", f"127.0.0.1:{tls.port}")] * 2


def test_provider_proxy_overrides_the_environment(server: EmbeddedServer, proxy: ProxyServer,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead_port()}")
    monkeypatch.setenv("NO_PROXY", "*")  # the environment's list does not bind the provider
    assert chat(make_client(server.base_url, proxy=proxy.url)) == "You said: Hello"
    assert len(proxy.requests) == 1


def test_empty_provider_proxy_means_direct(server: EmbeddedServer,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead_port()}")
    assert chat(make_client(server.base_url, proxy="")) == "You said: Hello"


def test_proxy_credentials_from_the_url(server: EmbeddedServer) -> None:
    with ProxyServer(credentials="me:p@ss") as proxy:
        url = proxy.url.replace("http://", "http://me:p%40ss@")
        assert chat(make_client(server.base_url, proxy=url)) == "You said: Hello"
        assert len(proxy.requests) == 1
        provider = Provider(base_url=server.base_url, proxy=url)
        assert "p%40ss" not in repr(provider) and "p@ss" not in repr(provider)


def test_unreachable_proxy_is_a_transport_error_naming_it(server: EmbeddedServer,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    port = dead_port()
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    with pytest.raises(TransportError) as info:
        chat(make_client(server.base_url))
    assert f"127.0.0.1:{port}" in str(info.value) and "HTTP_PROXY" in str(info.value)


def test_proxy_that_wants_credentials_says_so(server: EmbeddedServer) -> None:
    with ProxyServer(credentials="me:x") as proxy, pytest.raises(TransportError) as info:
        chat(make_client(server.base_url, proxy=proxy.url))
    assert "requires authentication" in str(info.value) and proxy.url in str(info.value)


def test_an_https_proxy(server: EmbeddedServer, tmp_path: Path) -> None:
    # TLS to the proxy itself, verified with the provider's CA bundle; then an http target
    # (absolute form inside the proxy's TLS) and an https one (TLS inside the tunnel).
    ca = ScratchCA(tmp_path)
    with ProxyServer(ssl_context=ca.server_context()) as proxy, https_server(ca) as tls:
        assert proxy.url.startswith("https://")
        bundle = str(ca.ca_path)
        assert chat(make_client(server.base_url, proxy=proxy.url, ca_bundle=bundle)) == \
            "You said: Hello"
        assert chat(make_client(tls.base_url, proxy=proxy.url, ca_bundle=bundle)) == \
            "You said: Hello"
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            chat(make_client(server.base_url, proxy=proxy.url))  # the proxy's CA is not trusted
    assert proxy.requests[:2] == [("POST", f"{server.base_url}/responses"),
                                  ("CONNECT", f"127.0.0.1:{tls.port}")]
