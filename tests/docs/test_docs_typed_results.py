"""docs/typed-results.md runs as written: its Python blocks run in order in one namespace, and
each one's output is the block the page shows after it."""

from __future__ import annotations

from typing import Any

import pytest
from support.doc_pages import examples as page_examples


def examples() -> list[tuple[str, str | None]]:
    return page_examples("typed-results.md")


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
