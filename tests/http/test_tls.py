"""TLS end to end against the embedded server over HTTPS, with a certificate from a test CA:
verification is on by default, CA bundles come from the provider or the environment."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from conftest import REQ, make_client
from support.tls_server import ScratchCA, https_server

from codexapi import (
    Client,
    ConfigError,
    Provider,
    TransportError,
)
from codexapi.http.tls import CA_BUNDLE_VARS
from codexapi.server import EmbeddedServer


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ScratchCA:
    return ScratchCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def tls(ca: ScratchCA) -> Iterator[EmbeddedServer]:
    with https_server(ca) as server:
        yield server


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("other") / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    return path


def chat(base_url: str, **kw: object) -> str:
    with make_client(base_url, **kw) as client:
        return client.stream(REQ).collect().text


def test_untrusted_certificate_is_a_transport_error(tls: EmbeddedServer) -> None:
    with pytest.raises(TransportError) as info:
        chat(tls.base_url)
    text = str(info.value)
    assert "TLS error" in text and "CERTIFICATE_VERIFY_FAILED" in text
    assert "CODEX_CA_CERTIFICATE" in text  # says how to fix it


def test_provider_ca_bundle_is_trusted(tls: EmbeddedServer, ca: ScratchCA) -> None:
    assert chat(tls.base_url, ca_bundle=str(ca.ca_path)) == "You said: Hello"


@pytest.mark.parametrize("var", CA_BUNDLE_VARS)
def test_ca_bundle_from_the_environment(tls: EmbeddedServer, ca: ScratchCA, var: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(var, str(ca.ca_path))
    assert chat(tls.base_url) == "You said: Hello"


def test_codex_variable_takes_precedence(tls: EmbeddedServer, ca: ScratchCA, other_ca: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_CA_CERTIFICATE", str(ca.ca_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(other_ca))
    assert chat(tls.base_url) == "You said: Hello"
    monkeypatch.setenv("CODEX_CA_CERTIFICATE", str(other_ca))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca.ca_path))
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        chat(tls.base_url)


def test_provider_bundle_beats_the_environment(tls: EmbeddedServer, ca: ScratchCA,
                                               other_ca: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_CA_CERTIFICATE", str(other_ca))
    assert chat(tls.base_url, ca_bundle=str(ca.ca_path)) == "You said: Hello"


def test_the_bundle_adds_to_the_system_roots(ca: ScratchCA) -> None:
    from codexapi.http.tls import make_ssl_context

    context = make_ssl_context(str(ca.ca_path))
    assert context is not None
    default = ssl.create_default_context()
    # Everything the default context trusts is still trusted, plus the test CA.
    assert len(context.get_ca_certs()) == len(default.get_ca_certs()) + 1
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname


def test_hostname_is_verified(tmp_path: Path) -> None:
    ca = trustme.CA()
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(context)  # no 127.0.0.1 in the certificate
    with EmbeddedServer(ssl_context=context) as server:
        with pytest.raises(TransportError, match="mismatch"):
            chat(server.base_url, ca_bundle=str(ca_path))
        assert chat(server.base_url.replace("127.0.0.1", "localhost"),
                    ca_bundle=str(ca_path)) == "You said: Hello"


def test_certfile_and_keyfile(tmp_path: Path) -> None:
    scratch = ScratchCA(tmp_path)
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    for blob in scratch.leaf.cert_chain_pems:
        with cert.open("ab") as f:
            f.write(blob.bytes())
    scratch.leaf.private_key_pem.write_to_path(str(key))
    with EmbeddedServer(certfile=str(cert), keyfile=str(key)) as server:
        assert chat(server.base_url, ca_bundle=str(scratch.ca_path)) == "You said: Hello"


@pytest.mark.parametrize("var", CA_BUNDLE_VARS)
def test_missing_ca_file_names_variable_and_path(var: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no-such-ca.pem"
    monkeypatch.setenv(var, str(missing))
    with pytest.raises(ConfigError) as info:
        Client(Provider(base_url="https://api.example/v1"), load_entrypoints=False)
    assert var in str(info.value) and str(missing) in str(info.value)
    assert "does not exist" in str(info.value)


def test_missing_provider_ca_bundle(tmp_path: Path) -> None:
    missing = tmp_path / "gone.pem"
    with pytest.raises(ConfigError, match=r"Provider\.ca_bundle .*gone\.pem.*does not exist"):
        Client(Provider(base_url="https://api.example/v1", ca_bundle=str(missing)),
               load_entrypoints=False)


def test_a_file_that_is_not_a_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(junk))
    # Read when the first TLS connection needs it, before anything is sent (the host does
    # not resolve: reaching the network would be a TransportError instead).
    client = Client(Provider(base_url="https://api.invalid/v1"), load_entrypoints=False)
    with pytest.raises(ConfigError, match=r"SSL_CERT_FILE .*junk\.pem.*not a readable PEM"):
        client.list_models("0.1.0")


def test_plain_http_never_reads_the_bundle(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # A bundle is parsed for the first TLS connection only (tens of milliseconds saved for
    # an http:// server, the embedded one included): here it is not a bundle at all.
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    monkeypatch.setenv("SSL_CERT_FILE", str(junk))
    with EmbeddedServer() as server:
        assert chat(server.base_url) == "You said: Hello"


def test_clients_share_the_parsed_bundle_until_it_changes(tls: EmbeddedServer, ca: ScratchCA,
                                                          other_ca: Path, tmp_path: Path) -> None:
    from codexapi.http.connect import Network

    # A web app making a Client per request pays for parsing the bundle once per process.
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(other_ca.read_bytes())
    first = Network.resolve(ca_bundle=str(bundle), trust_env=False).tls()
    assert Network.resolve(ca_bundle=str(bundle), trust_env=False).tls() is first
    assert Network.resolve(trust_env=False).tls() is Network.resolve(trust_env=False).tls()
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        chat(tls.base_url, ca_bundle=str(bundle))
    # The file now names the server's CA: the next Client trusts what it says now.
    bundle.write_bytes(other_ca.read_bytes() + ca.ca_path.read_bytes())
    assert Network.resolve(ca_bundle=str(bundle), trust_env=False).tls() is not first
    assert chat(tls.base_url, ca_bundle=str(bundle)) == "You said: Hello"
