"""The embedded server over HTTPS, with a certificate from a throwaway test CA (trustme)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trustme

from codexapi.server import EmbeddedServer


class ScratchCA:
    """A CA made for one test session, with its PEM written to ``ca_path``."""

    def __init__(self, directory: Path) -> None:
        self.ca = trustme.CA()
        self.ca_path = directory / "test-ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        self.leaf = self.ca.issue_cert("127.0.0.1", "localhost")

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.leaf.configure_cert(context)
        return context


@contextmanager
def https_server(ca: ScratchCA) -> Iterator[EmbeddedServer]:
    with EmbeddedServer(ssl_context=ca.server_context()) as server:
        assert server.base_url.startswith("https://127.0.0.1:")
        yield server
