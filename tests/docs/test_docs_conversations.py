"""docs/conversations.md runs as written: each `$ codexapi ...` command runs in a scratch
directory (the page's files written there) and prints what the page shows; the interactive
transcript is typed into a real `codexapi chat` under a pseudo-terminal."""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from support.pty_terminal import Terminal

from codexapi.cli.commands import main
from codexapi.cli.conversation import Conversation
from codexapi.server import EmbeddedServer

DOC = (ROOT / "docs" / "conversations.md").read_text("utf-8")
CONSOLES = re.findall(r"```console\n(.*?)```", DOC, flags=re.DOTALL)
[SCHEMA] = re.findall(r"```json\n(.*?)```", DOC, flags=re.DOTALL)
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


def transcript(block: str) -> list[tuple[list[str], str]]:
    """(argv, expected stdout) per `$ ` command of a console block."""
    out: list[tuple[list[str], str]] = []
    for line in block.splitlines(keepends=True):
        if line.startswith("$ "):
            out.append((shlex.split(line[2:]), ""))
        else:
            out[-1] = (out[-1][0], out[-1][1] + line)
    return out


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "forecast.json").write_text(SCHEMA)
    (tmp_path / "photo.png").write_bytes(PNG)
    return tmp_path


def test_the_page_has_its_transcripts() -> None:
    assert len(CONSOLES) == 6
    assert [argv[:2] for argv, _ in transcript(CONSOLES[0])] == [["codexapi", "chat"]]


@pytest.mark.parametrize("index", [1, 3, 4])
def test_commands_print_what_the_page_says(index: int, scratch: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in transcript(CONSOLES[index]):
        assert argv[0] == "codexapi"
        assert main(argv[1:]) == 0
        out, err = capsys.readouterr()
        assert out == expected, argv
        assert ("tokens: " in err) == ("--usage" in argv)


def test_store_continues_by_previous_response_id(scratch: Path, server: EmbeddedServer,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    steps = transcript(CONSOLES[2])
    assert [argv[2] for argv, _ in steps] == ["--store", "-c"]
    before = len(server.requests)
    for argv, expected in steps:
        assert main(argv[1:]) == 0
        assert capsys.readouterr().out == expected, argv
    first, second = (body for method, path, _, body in server.requests[before:]
                     if (method, path) == ("POST", "/responses"))
    assert first["store"] is True and "previous_response_id" not in first
    assert second["previous_response_id"].startswith("resp_") and len(second["input"]) == 1


def test_continue_kept_the_french_instructions(scratch: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    for argv, _ in transcript(CONSOLES[1]):
        main(argv[1:])
    saved = Conversation.last()
    assert saved.instructions == "Answer in French." and len(saved.items) == 6


def test_the_interactive_transcript(scratch: Path) -> None:
    [(argv, session)] = transcript(CONSOLES[0])
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env.update(TERM="dumb", NO_COLOR="1", PYTHONUNBUFFERED="1")
    term = Terminal([sys.executable, "-m", "codexapi", *argv[1:]], env, scratch)
    try:
        for line in session.splitlines():
            if line.startswith("> "):
                term.expect(r"> ")
                term.send(line[2:] + "\r")
                term.expect(re.escape(line[2:]))  # the terminal's echo
            else:
                term.expect(re.escape(line))
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.close()
    assert Conversation.last().instructions == "Be brief."


def test_logs_finds_the_turn(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    steps = transcript(CONSOLES[5])
    for argv, expected in steps[:-1]:
        assert main(argv[1:]) == 0
        assert capsys.readouterr().out == expected, argv
    argv, _ = steps[-1]
    assert argv[:2] == ["codexapi", "logs"] and main(argv[1:]) == 0
    [shown] = re.findall(r"```text\n(.*?)```", DOC, flags=re.DOTALL)
    expected, got = json.loads(shown), json.loads(capsys.readouterr().out)
    assert [{**hit, "conversation_id": "conv_...", "at": 1767225600.0} for hit in got] == \
        expected
    assert got[0]["conversation_id"] == Conversation.last().id
