"""The runnable examples of a docs/ page, for the tests that run pages as written."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def page(name: str) -> str:
    return (DOCS / name).read_text("utf-8")


def fences(name: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block of ``docs/<name>``, in order."""
    return re.findall(r"```(\w*)\n(.*?)```", page(name), flags=re.DOTALL)


def examples(name: str) -> list[tuple[str, str | None]]:
    """(code, expected output) for each Python block of ``docs/<name>``; the output is the
    plain block right after it, None when there is none."""
    out: list[tuple[str, str | None]] = []
    for lang, body in fences(name):
        if lang == "python":
            out.append((body, None))
        elif lang == "" and out and out[-1][1] is None:
            out[-1] = (out[-1][0], body)
    return out
