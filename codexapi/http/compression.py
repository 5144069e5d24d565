"""Body compression: what responses may come back as, zstd request bodies, and undoing a
``Content-Encoding`` under a size bound (for what keeps a body: cassettes, the embedded server).

zstd comes from the standard library's ``compression.zstd`` (Python 3.14+) or the
``backports.zstd`` package (``pip install codexapi[zstd]``), the same module urllib3 uses to
decode ``Content-Encoding: zstd`` responses. Without it, only gzip is asked for.
"""

from __future__ import annotations

import functools
import zlib
from types import ModuleType
from typing import Any

from ..errors import ConfigError

#: The values ``Provider.request_compression`` accepts (the crate's ``RequestCompression``).
REQUEST_COMPRESSIONS = (None, "zstd")


def zstd_module() -> ModuleType | None:
    """The zstd module, or None when neither the stdlib one nor the backport is installed."""
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        try:
            from backports import zstd  # type: ignore[import-not-found,import-untyped,no-redef,unused-ignore]
        except ImportError:
            return None
    return zstd  # type: ignore[no-any-return,unused-ignore]


@functools.cache
def accept_encoding() -> str:
    """``Accept-Encoding`` for every request: zstd first when responses in it can be decoded.
    Asked at the first request, not at import: the answer is urllib3's, and importing urllib3
    is most of what a first call loads."""
    try:
        from urllib3.response import HAS_ZSTD
    except ImportError:  # pragma: no cover - urllib3 < 2.0 is not supported
        return "gzip"
    return "zstd, gzip" if HAS_ZSTD else "gzip"


def compress(data: bytes, encoding: str) -> bytes:
    """``data`` encoded as ``encoding`` (``"zstd"``); ConfigError when that cannot be done."""
    if encoding != "zstd":
        raise ConfigError(f"unknown request compression {encoding!r}: use 'zstd' or None")
    zstd = zstd_module()
    if zstd is None:
        raise ConfigError("request_compression='zstd' needs a zstd module: install "
                          "codexapi[zstd] (backports.zstd), or use Python 3.14+")
    return bytes(zstd.compress(data))


#: The ``Content-Encoding`` values :func:`decompress` undoes (zstd when a zstd module is
#: installed).
DECODABLE_ENCODINGS = ("gzip", "x-gzip", "deflate", "zstd")


class UndecodableBody(ValueError):
    """A body does not decode as its ``Content-Encoding`` says (or no module decodes it)."""


class DecodedTooLarge(ValueError):
    """A body decodes to more than the bound given: nothing past the bound was decoded."""


def decompress(data: bytes, encoding: str, limit: int) -> bytes:
    """``data`` with ``encoding`` (one of :data:`DECODABLE_ENCODINGS`, any case) undone, every
    frame or gzip member of it. Never holds more than ``limit`` + 1 decoded bytes:
    :class:`DecodedTooLarge` past ``limit``, :class:`UndecodableBody` when it does not decode."""
    name = encoding.strip().lower()
    if name not in DECODABLE_ENCODINGS:
        raise UndecodableBody(f"unsupported Content-Encoding {encoding!r} "
                              f"({', '.join(DECODABLE_ENCODINGS)})")
    out = bytearray()
    rest = data
    while rest:
        decoder = _decoder(name)
        try:
            out += decoder.decompress(rest, max_length=limit + 1 - len(out))
        except Exception as exc:  # zlib.error, ZstdError: the module's own types
            raise UndecodableBody(f"the {name} body does not decode: {exc}") from None
        if len(out) > limit:
            raise DecodedTooLarge(f"the {name} body decodes to more than {limit} bytes")
        if not decoder.eof:
            raise UndecodableBody(f"the {name} body is cut short")
        # A gzip body may hold several members, a zstd one several frames.
        rest = decoder.unused_data
    return bytes(out)


def _decoder(name: str) -> Any:
    if name == "zstd":
        zstd = zstd_module()
        if zstd is None:
            raise UndecodableBody("a zstd body needs a zstd module: install codexapi[zstd] "
                                  "(backports.zstd), or use Python 3.14+")
        return zstd.ZstdDecompressor()
    return zlib.decompressobj(15 if name == "deflate" else 31)


__all__ = ["DECODABLE_ENCODINGS", "REQUEST_COMPRESSIONS", "DecodedTooLarge", "UndecodableBody",
           "accept_encoding", "compress", "decompress", "zstd_module"]
