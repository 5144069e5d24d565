"""docs/server.md runs as written: each Python block is executed and prints what the doc says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import ROOT

from codexapi.cli.commands import main

DOC = (ROOT / "docs" / "server.md").read_text(encoding="utf-8")
PYTHON = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)

pytestmark = pytest.mark.timeout(30)

#: What each block prints, in the doc's order.
PRINTED = [
    ["text='You said: Hi' confidence=1.0"],
    ["run date", "run uptime", "2 lines of results"],
    ["Take sunglasses.", "Take an umbrella.", "4 model calls"],
    ["You said: one", "You said: two"],
    ["queued", "3 response.completed", "completed You said: Hi"],
    ["3 8", "previous_response_not_found"],
    ["dropped mid-stream", "[('dropx1@4', 'dropped')]"],
    ["You said: Hello", "[('POST', 'http://127.0.0.1:8000/v1/responses')]", "You said: Hello"],
    ["200 32", "404", "401 1"],
]


@pytest.mark.parametrize("index", range(len(PYTHON)))
def test_server_doc_examples_run(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert len(PYTHON) == len(PRINTED)
    exec(compile(PYTHON[index], f"docs/server.md#{index}", "exec"), {"__name__": "__doc__"})
    assert capsys.readouterr().out.splitlines() == PRINTED[index]


def test_the_bad_script_line_is_what_serve_prints(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    shown = re.search(r"\$ codexapi serve --script rules.yaml\n(.*)\n", DOC)
    assert shown is not None
    (tmp_path / "rules.yaml").write_text('rules:\n  - reply: {text: hi}\n'
                                         '  - match: {input: "weather in ("}\n'
                                         '    reply: {text: b}\n')
    monkeypatch.chdir(tmp_path)
    assert main(["serve", "--script", "rules.yaml"]) == 2
    assert capsys.readouterr().err.strip() == shown.group(1)


def test_the_doc_names_what_it_prints() -> None:
    for lines in PRINTED:
        for line in lines:
            assert line.split(" ", 1)[0] in DOC
