"""docs/codex-wire.md runs as written: every python block executes against the embedded
server, and the names it documents exist."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

import codexapi

DOC = (ROOT / "docs" / "codex-wire.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_python_examples_run(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(BLOCKS[index], f"codex-wire.md[python {index}]", "exec"), {})
    out = capsys.readouterr().out
    if "session=session).collect()\n    method" in BLOCKS[index]:
        assert out.splitlines() == ["True remote_compaction_v2", "False completed 2048"]
    if "CyberPolicy as exc" in BLOCKS[index]:
        assert out.startswith("final: False")
    block = BLOCKS[index]
    if 'parent_thread_id="thread-1"' in block:
        assert out.splitlines()[-1] == "collab_spawn thread-1"
    if "supports_websockets = true" in block:
        assert out.splitlines() == ["responses_websocket 5.0 BearerAuth"]
    if '"408x1"' in block:
        assert out.splitlines() == ["You said: hi", "503 after 3 attempts",
                                    "overloaded: False None"]
    if 'for prompt in ("Hello", "Hello again")' in block:
        assert out.splitlines() == ["You said: Hello", "You said: Hello again",
                                    "['GET', 'WS', 'WS']"]
    if "fault:stall" in block:
        assert out.splitlines() == ["deadline 1"]
    if "client.prewarm(" in block:
        assert out.splitlines() == ["You said: Hello / You said: Again", "False False 1",
                                    "None True 0", "None True 1"]
    if "class NoWebSocket" in block:
        assert out.splitlines() == ["over HTTP", "over HTTP"]


def test_documented_names_are_public() -> None:
    for name in re.findall(r"`([A-Z][A-Za-z]+)\(", DOC):
        assert hasattr(codexapi, name), name
