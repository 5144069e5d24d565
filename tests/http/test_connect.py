"""codexapi.http.connect: the one connect path (proxy, TLS, what a failure means) the HTTP
transport and the WebSocket wire share, against servers and proxies on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.proxy_server import ProxyServer
from support.tls_server import ScratchCA, https_server

from codexapi import ConfigError, TransportError
from codexapi.errors import ConnectTimeout, DeadlineExceeded, TLSHandshakeError
from codexapi.http.connect import Network
from codexapi.http.urllib3_transport import Urllib3Transport
from codexapi.server import EmbeddedServer


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as srv:
        yield srv


def get_models(sock: socket.socket, host: str) -> bytes:
    """One HTTP/1.1 request over an opened socket; the status line of the answer."""
    sock.settimeout(5)
    sock.sendall(f"GET /v1/models HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                 .encode())
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    sock.close()
    return data.split(b"\r\n", 1)[0]


def host_of(url: str) -> str:
    return url.split("//", 1)[1].split("/", 1)[0]


class Silent:
    """A TCP server that accepts and then says nothing (a TLS server that never answers the
    ClientHello; a proxy that never answers CONNECT), or drips ``drip`` one byte at a time."""

    def __init__(self, drip: bytes = b"") -> None:
        self.drip = drip
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def _serve(self) -> None:
        conns = []
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        conns.append(conn)
        for byte in self.drip:
            if self._stop.wait(0.05):
                break
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                break
        self._stop.wait(10)
        conn.close()

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)


def test_the_transport_and_a_connection_wire_share_one_resolved_network(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ca = ScratchCA(tmp_path)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    transport = Urllib3Transport(ca_bundle=str(ca.ca_path))
    network = transport.network
    assert network.proxies.proxy_for("https://api.example/v1") is not None
    # The bundle is read for the first TLS pool, and the pools get the network's context:
    # one place reads CA bundles and proxies.
    assert "ssl_context" not in transport._pool_kw
    transport._load_bundle("https://api.example/v1")
    assert network.ssl_context is not None
    assert transport._pool_kw["ssl_context"] is network.ssl_context
    with pytest.raises(ConfigError, match=r"Provider\.ca_bundle"):
        Network.resolve(ca_bundle=str(tmp_path / "missing.pem"))


def test_direct_tls_and_its_certificate_check(tmp_path: Path) -> None:
    ca = ScratchCA(tmp_path)
    with https_server(ca) as tls:
        sock = Network.resolve(proxy="", ca_bundle=str(ca.ca_path)).open_socket(
            tls.base_url, 5.0)
        assert get_models(sock, host_of(tls.base_url)) == b"HTTP/1.1 200 OK"
        with pytest.raises(TLSHandshakeError, match="CERTIFICATE_VERIFY_FAILED") as info:
            Network.resolve(proxy="", trust_env=False).open_socket(tls.base_url, 5.0)
        assert "CODEX_CA_CERTIFICATE" in str(info.value)  # the same hint as over HTTP
        assert not info.value.retryable


def test_through_an_http_proxy_with_connect(server: EmbeddedServer) -> None:
    with ProxyServer() as proxy:
        sock = Network.resolve(proxy=proxy.url).open_socket(server.base_url, 5.0)
        assert get_models(sock, host_of(server.base_url)) == b"HTTP/1.1 200 OK"
        # ws:// targets are tunnelled too: a WebSocket cannot be sent in absolute form.
        sock = Network.resolve(proxy=proxy.url).open_socket(
            server.base_url.replace("http", "ws"), 5.0)
        sock.close()
    assert proxy.requests == [("CONNECT", host_of(server.base_url))] * 2


def test_tls_inside_the_tls_of_an_https_proxy(tmp_path: Path) -> None:
    ca = ScratchCA(tmp_path)
    with ProxyServer(ssl_context=ca.server_context()) as proxy, https_server(ca) as tls:
        network = Network.resolve(proxy=proxy.url, ca_bundle=str(ca.ca_path))
        sock = network.open_socket(tls.base_url.replace("https", "wss"), 5.0)
        assert get_models(sock, host_of(tls.base_url)) == b"HTTP/1.1 200 OK"
    assert proxy.requests == [("CONNECT", host_of(tls.base_url))]


def test_proxy_refusals_are_typed_and_name_the_proxy(server: EmbeddedServer) -> None:
    with ProxyServer(credentials="me:x") as proxy, pytest.raises(TransportError) as info:
        Network.resolve(proxy=proxy.url).open_socket(server.base_url, 5.0)
    assert "requires authentication" in str(info.value) and proxy.url in str(info.value)
    assert not info.value.retryable
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with pytest.raises(TransportError) as info:
        Network.resolve(proxy=f"http://127.0.0.1:{dead}").open_socket(server.base_url, 5.0)
    assert f"127.0.0.1:{dead}" in str(info.value) and "Provider.proxy" in str(info.value)
    assert info.value.retryable


@pytest.mark.parametrize("stall", ["tls-handshake", "proxy-drip"])
def test_every_connect_wait_ends_by_the_timeout_and_the_deadline(stall: str) -> None:
    # A TLS server that never answers the ClientHello; a proxy dripping its answer to
    # CONNECT a byte every 50 ms: each read is quick, the whole is not.
    silent = Silent(b"" if stall == "tls-handshake" else
                    b"HTTP/1.1 200 Connection established\r\nX-Pad: " + b"a" * 200)
    try:
        if stall == "tls-handshake":
            network, url = Network.resolve(proxy=""), f"https://127.0.0.1:{silent.port}/v1"
        else:
            network = Network.resolve(proxy=f"http://127.0.0.1:{silent.port}")
            url = "http://127.0.0.1:9/v1"
        started = time.monotonic()
        with pytest.raises(ConnectTimeout):
            network.open_socket(url, 0.8)
        assert time.monotonic() - started < 1.3
    finally:
        silent.close()
    silent = Silent(b"" if stall == "tls-handshake" else b"HTTP/1.1 200 OK\r\n" + b"a" * 200)
    try:
        if stall != "tls-handshake":
            network = Network.resolve(proxy=f"http://127.0.0.1:{silent.port}")
        else:
            url = f"https://127.0.0.1:{silent.port}/v1"
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            network.open_socket(url, 30.0, until=time.monotonic() + 0.8)
        assert time.monotonic() - started < 1.3
    finally:
        silent.close()
