"""JSON in one place: orjson when installed (it is a dependency), the stdlib otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

try:
    import orjson

    #: Parse JSON text (raises ``ValueError`` on bad input). orjson's own function, not a
    #: wrapper: the stream decoders call it once per event.
    loads: Callable[[str | bytes], Any] = orjson.loads

    def dumps(obj: Any) -> bytes:
        """Compact UTF-8 JSON, keys in insertion order."""
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - orjson is in install_requires

    def loads(data: str | bytes) -> Any:
        return json.loads(data)

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
