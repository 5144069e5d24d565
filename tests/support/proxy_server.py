"""A small forward proxy for tests: CONNECT tunnels (https targets) and absolute-URI requests
(http targets), one thread per connection, every wait bounded, 127.0.0.1 only.

With ``ssl_context`` it is an https:// proxy (TLS between client and proxy). It records what
it was asked (``requests``: method and target) so a test can assert that a
request did, or did not, go through it. With ``credentials`` set it answers 407 unless the
request carries the matching ``Proxy-Authorization``.
"""

from __future__ import annotations

import base64
import select
import socket
import socketserver
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

TIMEOUT = 10.0


class _Handler(socketserver.StreamRequestHandler):
    server: ProxyServer
    # Unbuffered: after the head, every byte still unread is on the socket, where the relay
    # reads it (a buffered reader would keep the start of a body to itself).
    rbufsize = 0

    def handle(self) -> None:
        self.connection.settimeout(TIMEOUT)
        line = self.rfile.readline(65536).decode("latin-1")
        if not line.strip():
            return
        method, target, _version = line.split()
        headers: list[tuple[str, str]] = []
        while True:
            raw = self.rfile.readline(65536).decode("latin-1")
            if raw in ("\r\n", "\n", ""):
                break
            name, _, value = raw.partition(":")
            headers.append((name.strip(), value.strip()))
        self.server.record(method, target, headers)
        if self.server.credentials is not None:
            expected = "Basic " + base64.b64encode(self.server.credentials.encode()).decode()
            got = next((v for k, v in headers if k.lower() == "proxy-authorization"), None)
            if got != expected:
                self.wfile.write(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                                 b"Proxy-Authenticate: Basic realm=\"test\"\r\n"
                                 b"Content-Length: 0\r\nConnection: close\r\n\r\n")
                return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = self._connect(host, int(port))
            if upstream is None:
                return
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            self._relay(upstream, b"")
            return
        parts = urlsplit(target)
        if parts.scheme != "http" or not parts.hostname:
            self.wfile.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
            return
        upstream = self._connect(parts.hostname, parts.port or 80)
        if upstream is None:
            return
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        # One request per proxy connection: the upstream closes after answering, so every
        # request the client makes is seen (and recorded) here.
        head = [f"{method} {path} HTTP/1.1"]
        head += [f"{k}: {v}" for k, v in headers
                 if k.lower() not in ("proxy-authorization", "proxy-connection", "connection")]
        head.append("Connection: close")
        first = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        self._relay(upstream, first)

    def _connect(self, host: str, port: int) -> socket.socket | None:
        if host.strip("[]") not in ("127.0.0.1", "localhost", "::1"):
            # Tests never leave the machine: refuse anything else as a real proxy would
            # refuse an unreachable host.
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
            return None
        try:
            return socket.create_connection((host.strip("[]"), port), timeout=TIMEOUT)
        except OSError:
            self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
            return None

    def _relay(self, upstream: socket.socket, first: bytes) -> None:
        client = self.connection
        with upstream:
            if first:
                upstream.sendall(first)
            sockets = [client, upstream]
            while not self.server.stopping.is_set():
                readable, _, _ = select.select(sockets, [], [], 0.2)
                for sock in readable:
                    try:
                        data = sock.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    other = upstream if sock is client else client
                    try:
                        other.sendall(data)
                    except OSError:
                        return


class ProxyServer(socketserver.ThreadingTCPServer):
    """``with ProxyServer() as proxy:`` ... ``proxy.url`` is ``http://127.0.0.1:<port>``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, credentials: str | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.credentials = credentials
        #: Speak TLS to clients (an https:// proxy) with this context.
        self.ssl_context = ssl_context
        self.requests: list[tuple[str, str]] = []
        self.headers_seen: list[list[tuple[str, str]]] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(TIMEOUT)
        try:
            tls = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        with tls:
            super().finish_request(tls, client_address)

    def record(self, method: str, target: str, headers: list[tuple[str, str]]) -> None:
        with self._lock:
            self.requests.append((method, target))
            self.headers_seen.append(headers)

    def __enter__(self) -> ProxyServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="test-proxy", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self.shutdown()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.server_close()
