"""`codexapi chat` conversations: saved turns and `-c`, `-s/--system`, `--schema`, `--usage`,
`-f/--file` attachments, and the interactive REPL driven through a pseudo-terminal."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from support.pty_terminal import Terminal

from codexapi import Completed, OutputTextDelta
from codexapi.cli.commands import build_parser, main
from codexapi.cli.conversation import STATE_ENV, Conversation, state_dir
from codexapi.cli.terminal import ChatView
from codexapi.server import EmbeddedServer

Capture = pytest.CaptureFixture[str]


def chat(capsys: Capture, server: EmbeddedServer, *argv: str) -> tuple[int, str, str]:
    code = main(["chat", "--base-url", server.base_url, "--no-plugins", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def sent(server: EmbeddedServer) -> dict[str, Any]:
    body: dict[str, Any] = server.requests[-1][3]
    return body


def texts(item: dict[str, Any]) -> list[str]:
    return [p.get("text", "") for p in item["content"]]


def test_continue_resumes_the_last_conversation_with_its_history(
        capsys: Capture, server: EmbeddedServer) -> None:
    assert chat(capsys, server, "-s", "Answer in French.", "Hello")[:2] == (
        0, "You said: Hello\n")
    first = sent(server)
    assert first["instructions"] == "Answer in French."
    code, out, _ = chat(capsys, server, "-c", "And again")
    assert (code, out) == (0, "You said: And again\n")
    body = sent(server)
    assert body["instructions"] == "Answer in French."  # kept from the saved conversation
    history = body["input"]
    assert [i["role"] for i in history] == ["user", "assistant", "user"]
    assert texts(history[1]) == ["You said: Hello"]
    assert all("id" not in i for i in history)  # nothing was stored server-side
    # A new conversation (no -c) starts empty; -s on a resumed one replaces the instructions.
    chat(capsys, server, "Fresh start")
    assert len(sent(server)["input"]) == 1
    chat(capsys, server, "--continue", "--system", "Be terse.", "More")
    assert sent(server)["instructions"] == "Be terse." and len(sent(server)["input"]) == 3


def test_continue_keeps_the_conversations_model_unless_m_names_another(
        capsys: Capture, server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEXAPI_MODEL", "default-model")
    chat(capsys, server, "-m", "o3", "Hello")
    chat(capsys, server, "-c", "Again")
    assert sent(server)["model"] == "o3" and len(sent(server)["input"]) == 3
    chat(capsys, server, "-c", "--model", "gpt-5-mini", "Switch")
    assert sent(server)["model"] == "gpt-5-mini"
    chat(capsys, server, "-c", "Still")
    assert sent(server)["model"] == "gpt-5-mini" == Conversation.last().model
    chat(capsys, server, "New")  # a new conversation: -m's default
    assert sent(server)["model"] == "default-model"


def test_conversations_are_saved_in_the_state_directory(capsys: Capture,
                                                         server: EmbeddedServer) -> None:
    chat(capsys, server, "Remember me")
    saved = Conversation.last()
    root = Path(os.environ[STATE_ENV])
    assert sorted(p.name for p in root.iterdir()) == ["conversations.db"]
    assert saved.items[0]["content"] == [{"type": "input_text", "text": "Remember me"}]
    assert saved.base_url == server.base_url and saved.last_response_id


def test_state_directory_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(STATE_ENV)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "codexapi"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert state_dir() == tmp_path / "home" / ".local" / "share" / "codexapi"


def test_continue_without_a_saved_conversation_is_a_config_error(
        capsys: Capture, server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "empty"))
    code, out, err = chat(capsys, server, "-c", "Hello")
    assert (code, out) == (2, "")
    assert "no conversation to continue yet" in err


def test_schema_asks_for_structured_output(capsys: Capture, server: EmbeddedServer,
                                           tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"},
                                                "days": {"type": "integer"}},
              "required": ["city", "days"], "additionalProperties": False}
    path = tmp_path / "forecast.json"
    path.write_text(json.dumps(schema))
    code, out, _ = chat(capsys, server, "--schema", str(path), "Paris tomorrow")
    assert code == 0 and json.loads(out) == {"city": "You said: Paris tomorrow",
                                                "days": 1}
    fmt = sent(server)["text"]["format"]
    assert fmt["type"] == "json_schema" and fmt["schema"] == schema and fmt["strict"] is True
    path.write_text("[not json")
    code, _, err = chat(capsys, server, "--schema", str(path), "Paris")
    assert code == 2 and "is not JSON" in err


def test_usage_goes_to_stderr_only_when_asked(capsys: Capture, server: EmbeddedServer) -> None:
    code, out, err = chat(capsys, server, "--usage", "Count me")
    assert code == 0 and out == "You said: Count me\n"
    assert re.fullmatch(r"tokens: \d+ in, \d+ out, \d+ total\n", err)
    assert chat(capsys, server, "Count me")[2] == ""


def test_usage_the_server_did_not_report_is_said_so() -> None:
    out, err = io.StringIO(), io.StringIO()
    with ChatView(out, err, usage=True) as view:
        view.show(OutputTextDelta(delta="Hi"))
        view.show(Completed(response_id="resp_1", token_usage=None))
    assert (out.getvalue(), err.getvalue()) == ("Hi\n", "tokens: not reported by the server\n")


def test_files_are_attached_as_input_parts(capsys: Capture, server: EmbeddedServer,
                                           tmp_path: Path) -> None:
    png = tmp_path / "dot.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 8)
    pdf = tmp_path / "doc.pdf"
    pdf.write_bytes(b"%PDF-1.4\n%%EOF\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("line one\n")
    code, _, _ = chat(capsys, server, "-f", str(png), "--file", str(pdf), "-f", str(notes),
                      "Look at these")
    assert code == 0
    parts = sent(server)["input"][-1]["content"]
    assert parts[0] == {"type": "input_text", "text": "Look at these"}
    assert parts[1] == {"type": "input_image", "detail": "auto", "image_url":
                        "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()}
    assert parts[2] == {"type": "input_file", "filename": "doc.pdf", "file_data":
                        "data:application/pdf;base64,"
                        + base64.b64encode(pdf.read_bytes()).decode()}
    assert parts[3] == {"type": "input_text", "text": "notes.txt:\n```\nline one\n\n```"}


def test_attachments_are_typed_by_their_content_not_their_name(
        capsys: Capture, server: EmbeddedServer, tmp_path: Path) -> None:
    shot = tmp_path / "screenshot"  # saved without an extension
    shot.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 8)
    photo = tmp_path / "photo.png"  # a JPEG, misnamed
    photo.write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 8)
    webp = tmp_path / "anim"
    webp.write_bytes(b"RIFF\x10\0\0\0WEBPVP8 " + b"\0" * 8)
    assert chat(capsys, server, "-f", str(shot), "-f", str(photo), "-f", str(webp),
                "Look")[0] == 0
    urls = [p["image_url"] for p in sent(server)["input"][-1]["content"][1:]]
    assert [u.split(";")[0] for u in urls] == ["data:image/png", "data:image/jpeg",
                                                "data:image/webp"]


@pytest.mark.parametrize(("name", "data", "message"), [
    ("missing.txt", None, "No such file"),
    ("blob.bin", b"\xff\xfe\x00\x01", "not UTF-8 text, nor an image"),
    ("fake.png", b"just text", "named like image/png, but its content is not an image"),
    ("fake.pdf", b"just text", "named like application/pdf, but its content is not a PDF"),
])
def test_bad_files_are_config_errors(capsys: Capture, server: EmbeddedServer, tmp_path: Path,
                                     name: str, data: bytes | None, message: str) -> None:
    path = tmp_path / name
    if data is not None:
        path.write_bytes(data)
    before = len(server.requests)
    code, out, err = chat(capsys, server, "-f", str(path), "Hello")
    assert (code, out) == (2, "") and message in err and str(path) in err
    assert len(server.requests) == before  # refused before anything was sent


def test_help_lists_the_conversation_options() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = sub.choices["chat"].format_help()  # type: ignore[attr-defined]
    for flag in ("-c, --continue", "-s INSTRUCTIONS, --system INSTRUCTIONS",
                 "--schema FILE", "--usage", "-f FILE, --file FILE", "--store"):
        assert flag in text, flag


# --- the REPL, under a pseudo-terminal ------------------------------------------------------


@pytest.fixture
def terminal_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    env.update(TERM="dumb", NO_COLOR="1", PYTHONUNBUFFERED="1")
    return env


def test_repl_history_cancel_and_exit(tmp_path: Path, terminal_env: dict[str, str]) -> None:
    # The first model call stalls after a few events: long enough for Ctrl-C to land mid-turn.
    with EmbeddedServer(faults="stallx1:30@6") as slow:
        argv = [sys.executable, "-m", "codexapi", "chat", "--base-url", slow.base_url,
                "--no-plugins", "-s", "Be brief."]
        term = Terminal(argv, terminal_env, tmp_path)
        try:
            term.expect(r"Ctrl-D or 'exit' to leave")
            term.expect(r"> ")
            term.send("stall now please\r")
            term.expect(r"You said:")  # the stall holds the rest of the answer
            term.send("\x03")  # Ctrl-C: cancels the turn, not the session
            term.expect(r"\(cancelled\)")
            term.expect(r"> ")
            term.send("Hello there\r")
            term.expect(r"You said: Hello there")
            term.expect(r"> ")
            term.send("\x1b[A\x1b[A\r")  # up, up: the cancelled line, from the history
            term.expect(r"You said: stall now please")
            term.expect(r"> ")
            term.interrupt_at_prompt(r"> ")  # Ctrl-C at the prompt: a fresh prompt
            term.send("\x04")  # Ctrl-D: leave
            assert term.close() == 0
        finally:
            if term.proc.poll() is None:
                term.close()
    saved = Conversation.last()
    users = [texts(i)[0] for i in saved.items if i.get("role") == "user"]
    assert users == ["Hello there", "stall now please"]  # the cancelled turn left no trace
    assert saved.instructions == "Be brief."
    history = (Path(os.environ[STATE_ENV]) / "history").read_text()
    assert "stall now please" in history and "Hello there" in history


def test_repl_continues_a_conversation(server: EmbeddedServer, tmp_path: Path,
                                       terminal_env: dict[str, str],
                                       capsys: Capture) -> None:
    chat(capsys, server, "First words")
    argv = [sys.executable, "-m", "codexapi", "chat", "-c", "--base-url", server.base_url,
            "--no-plugins", "--usage"]
    term = Terminal(argv, terminal_env, tmp_path)
    term.expect(r"continuing conv_\w+, 2 items")
    term.expect(r"> ")
    term.send("Second words\r")
    term.expect(r"You said: Second words")
    term.expect(r"tokens: \d+ in")
    term.send("exit\r")
    assert term.close() == 0
    assert [i["role"] for i in sent(server)["input"]] == ["user", "assistant", "user"]


def test_repl_takes_a_bracketed_paste_as_one_message(server: EmbeddedServer, tmp_path: Path,
                                                      terminal_env: dict[str, str]) -> None:
    argv = [sys.executable, "-m", "codexapi", "chat", "--base-url", server.base_url,
            "--no-plugins"]
    term = Terminal(argv, terminal_env, tmp_path)
    # The terminal is asked to bracket pastes (Python's readline module turns that off): else
    # a terminal sends a pasted text as lines, each a message of its own.
    term.expect(re.escape("\x1b[?2004h"))
    term.expect(r"> ")
    # What a terminal then sends for a paste of three lines, and Enter.
    term.send("\x1b[200~first line\rsecond line\rthird line\x1b[201~\r")
    term.expect(r"You said: first line\r?\nsecond line\r?\nthird line")
    term.expect(r"> ")
    term.send("exit\r")
    assert term.close() == 0
    saved = Conversation.last()
    assert [texts(i) for i in saved.items if i.get("role") == "user"] == [
        ["first line\nsecond line\nthird line"]]


def test_a_state_directory_that_cannot_be_written_costs_only_a_warning(
        capsys: Capture, server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(STATE_ENV, str(blocker))
    code, out, err = chat(capsys, server, "Hello")
    assert (code, out) == (0, "You said: Hello\n")
    assert err.startswith("codexapi: warning: cannot save the conversation in ")
    assert STATE_ENV in err


# -- --store: continuing by previous_response_id -----------------------------------------------

def input_tokens(err: str) -> int:
    match = re.search(r"tokens: (\d+) in", err)
    assert match, err
    return int(match.group(1))


def test_store_continues_by_previous_response_id_with_the_same_context(
        capsys: Capture, server: EmbeddedServer) -> None:
    chat(capsys, server, "--store", "one two three")
    first = sent(server)
    assert first["store"] is True and "previous_response_id" not in first
    saved = Conversation.last()
    assert saved.store and saved.last_response_id
    code, out, err = chat(capsys, server, "-c", "--usage", "four")
    assert (code, out) == (0, "You said: four\n")
    body = sent(server)
    assert body["previous_response_id"] == saved.last_response_id and body["store"] is True
    assert [texts(i) for i in body["input"]] == [["four"]]  # only the new message went
    chained = input_tokens(err)
    # The server built on the stored turn: the model saw as much as the saved history gives.
    chat(capsys, server, "one two three")
    _, _, err = chat(capsys, server, "-c", "--usage", "four")
    assert "previous_response_id" not in sent(server) and len(sent(server)["input"]) == 3
    assert chained == input_tokens(err) == 3 + 5 + 1 + 1
    # A conversation remembers --store; the saved history grows as before, for a fallback.
    chat(capsys, server, "--store", "a")
    chat(capsys, server, "-c", "b")
    rid = Conversation.last().last_response_id
    chat(capsys, server, "-c", "c")
    assert sent(server)["previous_response_id"] == rid
    assert [texts(i) for i in sent(server)["input"]] == [["c"]]
    assert len(Conversation.last().items) == 6


def test_store_turned_on_by_a_continued_turn(capsys: Capture, server: EmbeddedServer) -> None:
    chat(capsys, server, "Hello")
    chat(capsys, server, "-c", "--store", "Again")
    body = sent(server)  # the history this once (nothing was stored), asking to store it
    assert body["store"] is True and "previous_response_id" not in body
    assert len(body["input"]) == 3
    chat(capsys, server, "-c", "Once more")
    assert sent(server)["previous_response_id"] and len(sent(server)["input"]) == 1


def test_a_lost_previous_response_falls_back_to_the_history_once(
        capsys: Capture, server: EmbeddedServer) -> None:
    chat(capsys, server, "--store", "Hello")
    saved = Conversation.last()
    saved.last_response_id = "resp_expired"  # as after the server forgot it
    saved.save()
    before = len(server.requests)
    code, out, err = chat(capsys, server, "-c", "Again")
    assert (code, out) == (0, "You said: Again\n")
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == ["codexapi: warning: the server no longer has response resp_expired; "
                        "sending the conversation's 2 saved items instead"]
    (_, _, _, chained), (_, _, _, replayed) = server.requests[before:]
    assert chained["previous_response_id"] == "resp_expired" and len(chained["input"]) == 1
    assert "previous_response_id" not in replayed and replayed["store"] is True
    assert [i["role"] for i in replayed["input"]] == ["user", "assistant", "user"]
    assert all("id" not in i for i in replayed["input"])  # ids of items it does not have
    # The new answer is stored, so the next turn continues from it by id again.
    rid = Conversation.last().last_response_id
    assert rid and rid != "resp_expired"
    code, _, err = chat(capsys, server, "-c", "Third")
    assert code == 0 and "warning" not in err and sent(server)["previous_response_id"] == rid


def test_store_on_another_server_or_the_chat_wire_sends_the_history(
        capsys: Capture, server: EmbeddedServer) -> None:
    chat(capsys, server, "--store", "Hello")
    with EmbeddedServer() as other:
        code, out, _ = chat(capsys, other, "-c", "Elsewhere")
        assert (code, out) == (0, "You said: Elsewhere\n")
        assert "previous_response_id" not in sent(other) and len(sent(other)["input"]) == 3
        chat(capsys, other, "-c", "Still here")  # the conversation moved with its answer
        assert sent(other)["previous_response_id"] and len(sent(other)["input"]) == 1
    chat(capsys, server, "--store", "--wire", "chat", "Hi")
    chat(capsys, server, "-c", "--wire", "chat", "Hi again")
    assert [m["role"] for m in sent(server)["messages"]] == ["system", "user", "assistant", "user"]
