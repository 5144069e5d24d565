"""Model output back into values: JSON text, structured into a class by the one converter.

``StreamResult.output_json()`` / ``parsed(cls)`` and ``FunctionCall.parsed_arguments(cls)`` come
here; every failure is an :class:`~codexapi.OutputParseError` saying what was wrong.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from . import items
from .convert import get_converter
from .errors import ConfigError, OutputParseError

T = TypeVar("T")


def loads_json(text: str, error: Callable[[str], OutputParseError]) -> Any:
    """``json.loads(text)``, failing with ``error(detail)``."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise error(f"not valid JSON ({exc})") from None


def structure(data: Any, cls: type[T], error: Callable[[str], OutputParseError]) -> T:
    """``data`` structured into ``cls`` by the one converter, failing with ``error(detail)``."""
    import cattrs

    try:
        return get_converter().structure(data, cls)
    except (NameError, cattrs.StructureHandlerNotFoundError) as exc:
        # The class, not the output, is at fault: no output would fit, so say how to fix it.
        hint = (" (define the types it uses at module level)" if isinstance(exc, NameError)
                else " (use attrs classes, str, int, float, bool, None, lists, dicts, enums "
                "and Literals)")
        raise ConfigError(f"cannot structure values into {cls!r}: {exc}{hint}") from None
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError) as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            detail = "; ".join(cattrs.transform_error(exc))
        else:
            detail = f"{type(exc).__name__}: {exc}"
        raise error(f"not a valid {cls.__name__} ({detail})") from None


def parse_output(text: str, cls: type[T] | None = None, refusal: str | None = None) -> Any:
    """Model text output as JSON, structured into ``cls`` when given. ``refusal`` is what the
    model said instead of answering, if it refused."""

    def error(detail: str) -> OutputParseError:
        preview = text if len(text) <= 200 else text[:200] + "…"
        return OutputParseError(f"the model's output is {detail}: {preview!r}", text, detail)

    if not text.strip():
        if refusal is not None:
            shown = refusal if len(refusal) <= 200 else refusal[:200] + "…"
            raise OutputParseError(f"the model refused to answer: {shown!r}", text, "refused",
                                   refusal)
        raise error("empty, not JSON")
    data = loads_json(text, error)
    return data if cls is None else structure(data, cls, error)


# FunctionCall.parsed_arguments(cls) structures through here: items sit below the converter,
# so they cannot import it.
items._structure = structure

__all__ = ["loads_json", "parse_output", "structure"]
