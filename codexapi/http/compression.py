"""Body compression: what responses may come back as, and zstd request bodies.

zstd comes from the standard library's ``compression.zstd`` (Python 3.14+) or the
``backports.zstd`` package (``pip install codexapi[zstd]``), the same module urllib3 uses to
decode ``Content-Encoding: zstd`` responses. Without it, only gzip is asked for.
"""

from __future__ import annotations

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


def _urllib3_decodes_zstd() -> bool:
    try:
        from urllib3.response import HAS_ZSTD
    except ImportError:  # pragma: no cover - urllib3 < 2.0 is not supported
        return False
    return bool(HAS_ZSTD)


#: ``Accept-Encoding`` for every request: zstd first when responses in it can be decoded.
ACCEPT_ENCODING = "zstd, gzip" if _urllib3_decodes_zstd() else "gzip"


def compress(data: bytes, encoding: str) -> bytes:
    """``data`` encoded as ``encoding`` (``"zstd"``); ConfigError when that cannot be done."""
    if encoding != "zstd":
        raise ConfigError(f"unknown request compression {encoding!r}: use 'zstd' or None")
    zstd = zstd_module()
    if zstd is None:
        raise ConfigError("request_compression='zstd' needs a zstd module: install "
                          "codexapi[zstd] (backports.zstd), or use Python 3.14+")
    return bytes(zstd.compress(data))


__all__ = ["ACCEPT_ENCODING", "REQUEST_COMPRESSIONS", "compress", "zstd_module"]
