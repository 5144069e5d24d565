"""Which certificate authorities HTTPS connections trust.

Verification is always on. A CA bundle (a PEM file, or a directory of hashed certificates)
comes from the provider's ``ca_bundle``, else the first set of ``CODEX_CA_CERTIFICATE`` (Codex's
own variable), ``REQUESTS_CA_BUNDLE`` and ``SSL_CERT_FILE``. Like Codex, the bundle is trusted in
addition to the system roots, so pointing it at a private CA does not break public hosts.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError

#: Environment variables naming a CA bundle, in order of precedence.
CA_BUNDLE_VARS = ("CODEX_CA_CERTIFICATE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE")


def ca_bundle_from_env(environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """``(path, variable)`` of the first CA bundle variable that is set, else None."""
    env = os.environ if environ is None else environ
    for var in CA_BUNDLE_VARS:
        value = env.get(var, "").strip()
        if value:
            return value, var
    return None


def find_ca_bundle(ca_bundle: str | None = None, trust_env: bool = True,
                   source: str = "Provider.ca_bundle") -> tuple[Path, str] | None:
    """``(path, where it came from)`` of the configured bundle, or None when none is
    configured. A bundle that does not exist is a ConfigError naming the path and its source."""
    if ca_bundle is None and trust_env:
        found = ca_bundle_from_env()
        if found is not None:
            ca_bundle, source = found
    if not ca_bundle:
        return None
    path = Path(ca_bundle).expanduser()
    if not path.exists():
        raise ConfigError(f"{source} names the CA bundle {path}, which does not exist")
    return path, source


def make_ssl_context(ca_bundle: str | None = None, trust_env: bool = True,
                     source: str = "Provider.ca_bundle") -> ssl.SSLContext | None:
    """A verifying context that also trusts the configured bundle, or None when no bundle is
    configured (urllib3's default context then applies). A bundle that does not exist or holds
    no certificate is a ConfigError naming the path and where it came from."""
    found = find_ca_bundle(ca_bundle, trust_env, source)
    return None if found is None else load_ssl_context(*found)


def load_ssl_context(path: Path, source: str) -> ssl.SSLContext:
    """A verifying context trusting the system roots and the bundle at ``path`` (found by
    :func:`find_ca_bundle`); a file that holds no certificate is a ConfigError. Tens of
    milliseconds: a bundle of system roots is parsed twice, once as roots, once as the bundle."""
    context = ssl.create_default_context()
    try:
        if path.is_dir():
            context.load_verify_locations(capath=str(path))
        else:
            context.load_verify_locations(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise ConfigError(f"{source} names {path}, which is not a readable PEM CA bundle: "
                          f"{exc}") from None
    return context


#: Verifying contexts by what they trust, shared by every Client of the process: a bundle of
#: system roots takes 40-130 ms to parse, which a program making a Client per request (a web
#: app's view) would otherwise pay on each one's first TLS connection. At most
#: ``_SHARED_MAX`` are kept; a bundle file that changes (mtime, size) is parsed again.
_SHARED: dict[tuple[object, ...], ssl.SSLContext] = {}
_SHARED_MAX = 8


def shared_ssl_context(bundle: tuple[Path, str] | None) -> ssl.SSLContext:
    """The process's verifying context for ``bundle`` (from :func:`find_ca_bundle`; None: the
    system roots alone), made the first time it is asked for."""
    if bundle is None:
        # The system roots come from these variables when the context is made.
        key: tuple[object, ...] = ("system", os.environ.get("SSL_CERT_FILE"),
                                   os.environ.get("SSL_CERT_DIR"))
    else:
        path = bundle[0]
        try:
            stat = path.stat()
            key = ("bundle", str(path.resolve()), stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = ("bundle", str(path), None, None)  # load_ssl_context says what is wrong
    context = _SHARED.get(key)
    if context is None:
        made = ssl.create_default_context() if bundle is None else load_ssl_context(*bundle)
        if len(_SHARED) >= _SHARED_MAX:
            _SHARED.pop(next(iter(_SHARED)), None)
        # No lock: two threads racing here both build one, and setdefault keeps the first.
        context = _SHARED.setdefault(key, made)
    return context


__all__ = ["CA_BUNDLE_VARS", "ca_bundle_from_env", "find_ca_bundle", "load_ssl_context",
           "make_ssl_context", "shared_ssl_context"]
