"""Body compression: what responses may come back as, and zstd request bodies.

zstd comes from the standard library's ``compression.zstd`` (Python 3.14+) or the
``backports.zstd`` package (``pip install codexapi[zstd]``), the same module urllib3 uses to
decode ``Content-Encoding: zstd`` responses. Without it, only gzip is asked for.
"""

from __future__ import annotations

import functools
from types import ModuleType

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


__all__ = ["REQUEST_COMPRESSIONS", "accept_encoding", "compress", "zstd_module"]
