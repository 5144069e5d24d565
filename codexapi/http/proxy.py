"""Which proxy a request goes through: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``ALL_PROXY`` /
``NO_PROXY`` (lower-case forms preferred, as curl and the standard library do), or a provider's
own ``proxy``.

``NO_PROXY`` is a comma- or space-separated list. An entry matches a host name and its
subdomains (``example.com`` and ``.example.com`` both cover ``api.example.com``, as in curl),
an IP address exactly, or an IP network in CIDR form (``10.0.0.0/8``); ``host:port`` limits it
to one port; ``*`` bypasses the proxy for everything. Nothing is bypassed implicitly, not even
``localhost``: list it if your proxy should not see it.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import attrs

from ..errors import ConfigError
from ..redact import redact_url

_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@attrs.frozen(repr=False)
class Proxy:
    """A validated proxy: its URL (credentials removed), where it came from, and the
    ``Proxy-Authorization`` header when the URL carried credentials."""

    url: str
    source: str
    headers: Mapping[str, str] = attrs.field(factory=dict)

    def __repr__(self) -> str:
        return f"Proxy({self.url!r} from {self.source})"


def parse_proxy_url(value: str, source: str) -> Proxy:
    """Validate a proxy URL; ``source`` (a variable or setting name) is named in errors.

    A URL without a scheme means ``http://``, as curl assumes.
    """
    text = value.strip()
    shown = redact_url(text)
    if "://" not in text:
        text = "http://" + text

    def bad(why: str) -> ConfigError:
        return ConfigError(f"{source} is not a usable proxy URL ({shown!r}): {why}")

    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise bad(str(exc)) from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise bad(f"scheme {scheme!r} is not supported (use http:// or https://)")
    host = parts.hostname
    if not host:
        raise bad("it has no host")
    if any(c.isspace() for c in text):
        raise bad("it contains whitespace")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise bad("a proxy URL is scheme://[user:password@]host[:port] with no path")
    netloc = f"[{host}]" if ":" in host else host
    url = f"{scheme}://{netloc}:{port or _DEFAULT_PORTS[scheme]}"
    headers: dict[str, str] = {}
    if parts.username is not None:
        # Imported here: only a proxy URL with credentials needs it, and urllib3 is most of
        # a first call's imports.
        from urllib3.util import make_headers

        creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers = dict(make_headers(proxy_basic_auth=creds))
    return Proxy(url, source, headers)


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [v6] or [v6]:port
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, int(port)
    return entry, None


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def bypasses(no_proxy: tuple[str, ...], host: str, port: int) -> bool:
    """Whether ``host:port`` is listed in the parsed ``NO_PROXY`` entries."""
    host = host.lower().strip("[]").rstrip(".")
    host_ip = _ip(host)
    for entry in no_proxy:
        if entry == "*":
            return True
        name, entry_port = _split_host_port(entry)
        if entry_port is not None and entry_port != port:
            continue
        if "/" in name:
            try:
                network = ipaddress.ip_network(name, strict=False)
            except ValueError:
                continue
            if host_ip is not None and host_ip.version == network.version \
                    and host_ip in network:
                return True
            continue
        name_ip = _ip(name)
        if name_ip is not None or host_ip is not None:
            # Addresses match exactly (::1 and 0:0::1 are the same); never as suffixes.
            if name_ip is not None and name_ip == host_ip:
                return True
            continue
        name = name.lstrip("*").lstrip(".").rstrip(".")
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


@attrs.frozen
class ProxySettings:
    """Proxies per URL scheme and the ``NO_PROXY`` list, resolved once."""

    by_scheme: Mapping[str, Proxy] = attrs.field(factory=dict)
    no_proxy: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.by_scheme)

    def proxy_for(self, url: str) -> Proxy | None:
        """The proxy ``url`` goes through, or None for a direct connection."""
        if not self.by_scheme:
            return None
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        proxy = self.by_scheme.get(scheme)
        if proxy is None:
            return None
        if self.no_proxy:
            try:
                port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
            except ValueError:
                port = 0
            if bypasses(self.no_proxy, parts.hostname or "", port):
                return None
        return proxy

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ProxySettings:
        """Read the proxy variables; a malformed proxy URL is a ConfigError naming its
        variable."""
        env = os.environ if environ is None else environ

        def lookup(name: str) -> tuple[str, str] | None:
            for var in (name.lower(), name.upper()):
                value = env.get(var, "")
                if value.strip():
                    return value, var
            return None

        found: dict[str, tuple[str, str]] = {}
        every = lookup("all_proxy")
        for scheme in _SCHEMES:
            hit = lookup(f"{scheme}_proxy")
            if scheme == "http" and hit is not None and hit[1] == "HTTP_PROXY" \
                    and "REQUEST_METHOD" in env:
                # Under CGI, HTTP_PROXY is the client's "Proxy:" request header ("httpoxy"),
                # so the standard library ignores it there; so do we.
                hit = None
            hit = hit or every
            if hit is not None:
                found[scheme] = hit
        by_scheme = {scheme: parse_proxy_url(value, var) for scheme, (value, var) in
                     found.items()}
        no = lookup("no_proxy")
        entries = tuple(e for e in no[0].replace(",", " ").lower().split()) if no else ()
        return cls(by_scheme, entries)

    @classmethod
    def for_provider(cls, proxy: str | None, trust_env: bool = True,
                     source: str = "Provider.proxy") -> ProxySettings:
        """``proxy`` None: the environment (when ``trust_env``); "": direct; a URL: always that
        proxy (``NO_PROXY`` is for the environment's proxies only)."""
        if proxy is None:
            return cls.from_env() if trust_env else cls()
        if not proxy.strip():
            return cls()
        fixed = parse_proxy_url(proxy, source)
        return cls({scheme: fixed for scheme in _SCHEMES})


__all__ = ["Proxy", "ProxySettings", "bypasses", "parse_proxy_url"]
