"""What an exception shows a reader, for tests that look for a secret in it."""

from __future__ import annotations

from collections.abc import Iterator


def exception_chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception in its cause and context chain, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        exc = todo.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        todo += [exc.__cause__, exc.__context__]


def error_texts(error: BaseException) -> str:
    """Everything an exception and its cause chain show: str, repr, args and fields."""
    return "\n".join(text for exc in exception_chain(error)
                     for text in (str(exc), repr(exc), repr(exc.args),
                                  repr(getattr(exc, "__dict__", {}))))
