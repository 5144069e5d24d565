"""docs/tools.md runs as written: its Python blocks run in order in one namespace, each one's
output the block the page shows after it; the `py` block is the functions file the console
transcript uses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
from support.doc_pages import examples as page_examples
from support.doc_pages import fences, page

from codexapi.cli.commands import main

DOC = page("tools.md")
FENCES = fences("tools.md")


def examples() -> list[tuple[str, str | None]]:
    return page_examples("tools.md")


def test_the_page_has_its_examples() -> None:
    assert len(examples()) == 3 and all(expected for _, expected in examples())
    assert [lang for lang, _ in FENCES].count("console") == 1


def test_examples_print_what_the_page_says(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {}
    for index, (code, expected) in enumerate(examples()):
        exec(compile(code, f"docs/tools.md[python {index}]", "exec", dont_inherit=True),
             namespace)
        assert capsys.readouterr().out == expected, f"example {index}"


def test_the_functions_transcript(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    [file] = [body for lang, body in FENCES if lang == "py"]
    (tmp_path / "tools.py").write_text(file)
    [console] = [body for lang, body in FENCES if lang == "console"]
    command, *output = console.splitlines(keepends=True)
    argv = shlex.split(command.removeprefix("$ "))
    assert main(argv[1:]) == 0
    out, err = capsys.readouterr()
    assert out == "".join(output)
    for line in re.findall(r"on stderr `([^`]+)` and `([^`]+)`", DOC)[0]:
        assert line in err
