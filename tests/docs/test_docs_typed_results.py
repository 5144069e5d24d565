"""docs/typed-results.md runs as written: its Python blocks run in order in one namespace, and
each one's output is the block the page shows after it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from conftest import ROOT

DOC = (ROOT / "docs" / "typed-results.md").read_text("utf-8")
FENCES = re.findall(r"```(\w*)\n(.*?)```", DOC, flags=re.DOTALL)


def examples() -> list[tuple[str, str | None]]:
    """(code, expected output) for each Python block; the output is the plain block after it."""
    out: list[tuple[str, str | None]] = []
    for lang, body in FENCES:
        if lang == "python":
            out.append((body, None))
        elif lang == "" and out and out[-1][1] is None:
            out[-1] = (out[-1][0], body)
    return out


def test_the_page_has_its_examples() -> None:
    assert len(examples()) == 7 and all(expected for _, expected in examples())


def test_examples_print_what_the_page_says(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {}
    for index, (code, expected) in enumerate(examples()):
        # dont_inherit: run as a user's script would, without this module's __future__ imports.
        code_obj = compile(code, f"docs/typed-results.md[python {index}]", "exec",
                           dont_inherit=True)
        exec(code_obj, namespace)
        assert capsys.readouterr().out == expected, f"example {index}"
