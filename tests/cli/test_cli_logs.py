"""Conversations that remember where they ran: `chat -c` and `--cid` on the conversation's own
server, wire, provider and model; the SQLite store (kept, migrated, free of secrets);
`codexapi logs`; and `chat --functions`."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from codexapi.cli.commands import main
from codexapi.cli.conversation import STATE_ENV, Conversation
from codexapi.cli.store import DB_NAME, Store
from codexapi.server import EmbeddedServer

Capture = pytest.CaptureFixture[str]


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sent(server: EmbeddedServer) -> tuple[str, dict[str, Any]]:
    _method, path, _headers, body = server.requests[-1][:4]
    return path, body


def state() -> Path:
    return Path(os.environ[STATE_ENV])


def test_continue_goes_back_to_the_conversations_server_and_wire(
        capsys: Capture, server: EmbeddedServer) -> None:
    code, out, _ = run(capsys, "chat", "--no-plugins", "--base-url", server.base_url,
                       "--wire", "chat", "first")
    assert (code, out) == (0, "You said: first\n")
    # No --base-url, no --wire: the issue's `chat -c` answered from the offline model.
    code, out, err = run(capsys, "chat", "--no-plugins", "-c", "second")
    assert (code, out, err) == (0, "You said: second\n", "")
    path, body = sent(server)
    assert path.endswith("/chat/completions")
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    saved = Conversation.last()
    assert (saved.base_url, saved.wire, saved.provider, saved.embedded) == (
        server.base_url, "chat", None, False)
    # An option names another wire: it wins, and the conversation then keeps it.
    run(capsys, "chat", "--no-plugins", "-c", "--wire", "responses", "third")
    assert sent(server)[0].endswith("/responses")
    run(capsys, "chat", "--no-plugins", "-c", "fourth")
    assert sent(server)[0].endswith("/responses") and Conversation.last().wire == "responses"


def test_continue_keeps_a_codex_config_provider(capsys: Capture, server: EmbeddedServer,
                                                tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[model_providers.team]\nname = "Team"\nbase_url = "{server.base_url}"\n'
                      'wire_api = "chat"\nhttp_headers = { "X-Team" = "blue" }\n')
    run(capsys, "chat", "--no-plugins", "--config", str(config), "--provider", "team", "hi")
    assert Conversation.last().provider == "team"
    code, out, _ = run(capsys, "chat", "--no-plugins", "--config", str(config), "-c", "again")
    assert (code, out) == (0, "You said: again\n")
    headers = {k.lower(): v for k, v in server.requests[-1][2].items()}
    assert headers["x-team"] == "blue"  # the provider's own headers
    assert sent(server)[0].endswith("/chat/completions")


def test_continue_of_an_offline_conversation_starts_the_embedded_server_again(
        capsys: Capture) -> None:
    run(capsys, "chat", "--no-plugins", "offline one")
    code, out, err = run(capsys, "chat", "--no-plugins", "-c", "offline two")
    assert (code, out) == (0, "You said: offline two\n") and "embedded scripted model" in err
    saved = Conversation.last()
    assert saved.embedded and [i["role"] for i in saved.items] == [
        "user", "assistant", "user", "assistant"]


def test_cid_continues_any_conversation(capsys: Capture, server: EmbeddedServer) -> None:
    base = ("chat", "--no-plugins", "--base-url", server.base_url)
    run(capsys, *base, "-m", "o3", "older one")
    older = Conversation.last().id
    run(capsys, *base, "newer one")
    code, out, _ = run(capsys, "chat", "--no-plugins", "--cid", older, "back to it")
    assert (code, out) == (0, "You said: back to it\n")
    body = sent(server)[1]
    assert body["model"] == "o3"
    assert [m["content"][0]["text"] for m in body["input"]] == [
        "older one", "You said: older one", "back to it"]
    assert Conversation.last().id == older  # now the last used
    code, _, err = run(capsys, "chat", "--cid", "conv_nope", "x")
    assert code == 2 and "no saved conversation 'conv_nope'" in err


def test_conversations_are_kept(tmp_path: Path) -> None:
    for n in range(120):  # earlier versions kept the newest 100, silently
        conversation = Conversation.new("m", "", "http://127.0.0.1:1/v1", "responses")
        conversation.add_turn({"role": "user", "content": f"number {n}"}, [], None)
        conversation.save(tmp_path)
    assert len(Store(tmp_path).recent(1000)) == 120


def test_logs_list_show_search_and_delete(capsys: Capture, server: EmbeddedServer) -> None:
    base = ("chat", "--no-plugins", "--base-url", server.base_url)
    run(capsys, *base, "apples are red")
    first = Conversation.last().id
    run(capsys, *base, "-c", "and pears?")
    run(capsys, *base, "bananas")
    second = Conversation.last().id
    code, out, _ = run(capsys, "logs")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].startswith(second) and lines[0].endswith("1 turn  bananas")
    assert lines[1].startswith(first) and lines[1].endswith("2 turns  apples are red")
    listed = json.loads(run(capsys, "logs", "--json", "-n", "1")[1])
    assert [c["id"] for c in listed] == [second] and listed[0]["turns"] == 1
    code, out, _ = run(capsys, "logs", first)
    assert out.startswith(f"{first}: gpt-5 on {server.base_url}, wire responses, 2 turns\n")
    assert "> apples are red\nYou said: apples are red\n" in out
    assert out.endswith("> and pears?\nYou said: and pears?\n")
    shown = json.loads(run(capsys, "logs", first, "--json")[1])
    assert [t["prompt"] for t in shown["turns"]] == ["apples are red", "and pears?"]
    assert shown["turns"][0]["items"][1]["role"] == "assistant"
    # -q searches prompts and answers (case-insensitively), newest first; % is no wildcard.
    hits = json.loads(run(capsys, "logs", "-q", "PEARS", "--json")[1])
    assert [(h["conversation_id"], h["prompt"]) for h in hits] == [(first, "and pears?")]
    assert "You said: bananas" in run(capsys, "logs", "-q", "said: ban")[1]
    assert run(capsys, "logs", "-q", "a%e")[1] == ""
    assert run(capsys, "logs", first, "--delete")[:2] == (0, f"deleted {first}\n")
    assert [c["id"] for c in json.loads(run(capsys, "logs", "--json")[1])] == [second]
    code, _, err = run(capsys, "logs", first)
    assert code == 2 and f"no saved conversation {first!r}" in err


def test_logs_before_any_conversation_creates_nothing(capsys: Capture) -> None:
    assert run(capsys, "logs") == (0, "", "")
    assert run(capsys, "logs", "--json")[1] == "[]\n"
    assert not (state() / DB_NAME).exists()


def test_json_conversations_of_earlier_versions_are_imported(capsys: Capture,
                                                             server: EmbeddedServer) -> None:
    folder = state() / "conversations"
    folder.mkdir(parents=True)
    items = [{"type": "message", "role": "user", "content": [{"type": "input_text",
                                                              "text": "old question"}]},
             {"type": "message", "role": "assistant", "id": "msg_1",
              "content": [{"type": "output_text", "text": "old answer"}]}]
    for cid, mtime in (("conv_aaa", 2000.0), ("conv_bbb", 1000.0)):
        (folder / f"{cid}.json").write_text(json.dumps({
            "id": cid, "model": "o3", "instructions": "Be old.", "base_url": server.base_url,
            "wire": "responses", "store": False, "items": items, "last_response_id": None,
            "created": 900.0}))
        os.utime(folder / f"{cid}.json", (mtime, mtime))
    (state() / "last").write_text("conv_bbb")  # `last` wins over the files' times
    code, out, _ = run(capsys, "chat", "--no-plugins", "-c", "new question")
    assert (code, out) == (0, "You said: new question\n")
    body = sent(server)[1]
    assert body["model"] == "o3" and body["instructions"] == "Be old."
    assert [i["content"][0]["text"] for i in body["input"]] == [
        "old question", "old answer", "new question"]
    assert sorted(p.name for p in state().iterdir()) == [
        "conversations.db", "conversations.json-migrated"]
    hits = json.loads(run(capsys, "logs", "-q", "old answer", "--json")[1])
    assert sorted(h["conversation_id"] for h in hits) == ["conv_aaa", "conv_bbb"]


def test_no_secret_reaches_the_database(capsys: Capture, server: EmbeddedServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sk-never-stored-0123456789"
    monkeypatch.setenv("OPENAI_API_KEY", key)
    url = server.base_url + "?api-key=query-secret-987654"
    code, out, _ = run(capsys, "chat", "--no-plugins", "--base-url", url, "-s",
                       f"My key is {key}", f"the key is {key}")
    assert code == 0 and key in out  # the model saw it; the database does not
    raw = (state() / DB_NAME).read_bytes()
    with sqlite3.connect(state() / DB_NAME) as db:
        dumped = "\n".join(db.iterdump())
    for secret in (key, "query-secret-987654"):
        assert secret.encode() not in raw and secret not in dumped
    assert "<redacted>" in dumped
    # The URL's secret was not saved, so -c cannot go back there on its own.
    code, _, err = run(capsys, "chat", "--no-plugins", "-c", "again")
    assert code == 2 and "held a secret, which was not saved: give it again with --base-url" in err
    assert run(capsys, "chat", "--no-plugins", "-c", "--base-url", url, "again")[0] == 0


def test_a_chat_wire_answer_is_saved_as_one_text_part(capsys: Capture,
                                                      server: EmbeddedServer) -> None:
    run(capsys, "chat", "--no-plugins", "--base-url", server.base_url, "--wire", "chat",
        "one two three four five six seven")
    answer = Conversation.last().items[-1]
    assert answer["content"] == [{"type": "output_text",
                                  "text": "You said: one two three four five six seven"}]


FUNCTIONS = '''
"""Tools for the chat."""
import dataclasses


@dataclasses.dataclass
class Sum:
    total: int


def add(a: int, b: int) -> Sum:
    """Add two numbers."""
    return Sum(a + b)


def _helper() -> None:
    """Not offered: private."""
'''


def test_functions_are_offered_and_run(capsys: Capture, server: EmbeddedServer,
                                       tmp_path: Path) -> None:
    tools = tmp_path / "tools.py"
    tools.write_text(FUNCTIONS)
    code, out, err = run(capsys, "chat", "--no-plugins", "--base-url", server.base_url,
                         "--functions", str(tools), "use add")
    assert code == 0
    assert out.startswith("Tool call_") and out.endswith(' returned: {"total":2}\n')
    assert 'tool call: add({"a": 1, "b": 1})' in err and 'tool output: {"total":2}' in err
    offered = sent(server)[1]["tools"]
    assert [t["name"] for t in offered] == ["add"]
    assert offered[0]["description"] == "Add two numbers."
    saved = Conversation.last()
    assert [i["type"] for i in saved.items] == ["message", "function_call",
                                                "function_call_output", "message"]
    run(capsys, "chat", "--no-plugins", "-c", "thanks")
    assert [i["type"] for i in sent(server)[1]["input"]][1:3] == ["function_call",
                                                                 "function_call_output"]


@pytest.mark.parametrize(("text", "message"), [
    ("def f(x): return x\n", "annotate parameter 'x'"),
    ("x = 1\n", "defines no public function"),
    ("def f(:\n", "SyntaxError (line 1)"),
    ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
])
def test_bad_function_files_are_config_errors(capsys: Capture, tmp_path: Path, text: str,
                                              message: str) -> None:
    path = tmp_path / "bad.py"
    path.write_text(text)
    code, out, err = run(capsys, "chat", "--functions", str(path), "use it")
    assert (code, out) == (2, "") and message in err and str(path) in err
    code, _, err = run(capsys, "chat", "--functions", str(tmp_path / "none.py"), "use it")
    assert code == 2 and "no such file" in err
