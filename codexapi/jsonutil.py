"""JSON in one place: orjson when installed (it is a dependency), the stdlib otherwise."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson

    def loads(data: str | bytes) -> Any:
        """Parse JSON text (raises ``ValueError`` on bad input)."""
        return orjson.loads(data)

    def dumps(obj: Any) -> bytes:
        """Compact UTF-8 JSON, keys in insertion order."""
        return orjson.dumps(obj)

except ImportError:  # pragma: no cover - orjson is in install_requires

    def loads(data: str | bytes) -> Any:
        return json.loads(data)

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
