"""`codexapi chat`: streaming text, reasoning and tool calls on stderr, NDJSON, spinner, usage,
request options, Codex config providers, and one-line errors with an exit code per kind."""

from __future__ import annotations

import io
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT

from codexapi import OutputTextDelta, ReasoningSummaryDelta
from codexapi.cli.commands import EXIT_CODES, main
from codexapi.cli.options import EMBEDDED_NOTICE
from codexapi.cli.terminal import CLEAR_LINE, DIM, ChatView
from codexapi.errors import ApiError, AuthError, ConfigError, StreamError, TransportError
from codexapi.events import Completed, TokenUsage
from codexapi.server import EmbeddedServer, Exchange, route

Capture = pytest.CaptureFixture[str]


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def last_request(server: EmbeddedServer) -> tuple[dict[str, str], dict[str, object]]:
    _, _, headers, body = server.requests[-1]
    return {k.lower(): v for k, v in headers.items()}, body


# --- output -------------------------------------------------------------------------------------


def test_text_on_stdout_usage_on_stderr(capsys: Capture) -> None:
    code, out, err = run(capsys, "chat", "--usage", "Hello there")
    assert code == 0
    assert out == "You said: Hello there\n"
    notice, usage = err.splitlines()
    assert notice == EMBEDDED_NOTICE  # offline: it says so, in one line
    assert usage.startswith("tokens: ") and " in, " in usage and " total" in usage
    assert run(capsys, "chat", "Hello there")[1:] == ("You said: Hello there\n",
                                                     EMBEDDED_NOTICE + "\n")


def test_stdin_as_input(capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("from a pipe"))
    assert run(capsys, "chat", "-")[:2] == (0, "You said: from a pipe\n")


def test_json_writes_one_event_per_line(capsys: Capture) -> None:
    code, out, _ = run(capsys, "chat", "--json", "Hi you")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    types = [e["type"] for e in events]
    body_types = [t for t in types if t not in ("models_etag", "server_model", "rate_limits",
                                                "server_reasoning_included")]
    assert body_types[0] == "created" and types[-1] == "completed"
    assert "".join(e["delta"] for e in events if e["type"] == "output_text_delta") == \
        "You said: Hi you"
    assert events[-1]["token_usage"]["total_tokens"] > 0


def test_reasoning_summaries_on_stderr_or_hidden(capsys: Capture) -> None:
    code, out, err = run(capsys, "chat", "--reasoning-effort", "low", "--usage", "Hi")
    assert code == 0 and out == "You said: Hi\n"
    reasoning = err.splitlines()[1]  # after the offline notice
    assert "words" in reasoning  # the scripted model's summary
    assert "reasoning" in err.splitlines()[-1]  # usage counts reasoning tokens
    code, out, err = run(capsys, "chat", "--reasoning-effort", "low", "--no-reasoning", "Hi")
    assert code == 0 and out == "You said: Hi\n"
    assert "words" not in err


def test_request_options_reach_the_server(capsys: Capture, server: EmbeddedServer) -> None:
    code, out, _ = run(capsys, "chat", "--base-url", server.base_url, "--model", "gpt-test",
                       "--instructions", "Be terse.", "--reasoning-effort", "high",
                       "--verbosity", "low", "--conversation-id", "conv-42", "Hi")
    assert code == 0 and out == "You said: Hi\n"
    headers, body = last_request(server)
    assert body["model"] == "gpt-test" and body["instructions"] == "Be terse."
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["text"] == {"verbosity": "low"}
    assert headers["conversation_id"] == "conv-42" and headers["session_id"] == "conv-42"


@route("POST", "/test-cli-tool/responses")
def _tool_call(ex: Exchange) -> None:
    item = {"type": "function_call", "name": "get_weather", "arguments": '{"city":"Paris"}',
            "call_id": "call_1"}
    ex.stream_events([
        f"data: {json.dumps({'type': 'response.output_item.done', 'item': item})}\n\n".encode(),
        b'data: {"type":"response.completed","response":{"id":"r1"}}\n\n',
    ])


def test_tool_calls_are_shown(capsys: Capture, server: EmbeddedServer) -> None:
    code, out, err = run(capsys, "chat", "--base-url", server.base_url + "/test-cli-tool",
                         "What's the weather?")
    assert code == 0 and out == ""
    assert 'tool call: get_weather({"city":"Paris"}) [call_1]' in err


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_view_dims_reasoning_and_spins_until_the_first_token(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    out, err = io.StringIO(), Tty()
    view = ChatView(out, err)
    view.spinner.interval = 0.01
    with view:
        deadline = time.monotonic() + 5
        # The request is "in flight": the spinner turns.
        while err.getvalue().count("waiting for the model") < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        view.show(ReasoningSummaryDelta("pondering", 0))
        spun = err.getvalue()
        view.show(OutputTextDelta("Hi"))
        view.show(Completed("r", TokenUsage(1, 0, 2, 0, 3)))
        time.sleep(0.15)  # a stopped spinner writes nothing more
    text = err.getvalue()
    assert spun.count("waiting for the model") >= 2 and CLEAR_LINE in spun
    erased = text.rindex(CLEAR_LINE, 0, text.index("pondering"))  # the spinner's last write
    assert "waiting for the model" not in text[erased:]
    assert f"{DIM}pondering" in text and f"{DIM}tokens: 1 in, 2 out, 3 total" in text
    assert out.getvalue() == "Hi\n"


def test_no_spinner_or_color_off_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = io.StringIO(), io.StringIO()
    with ChatView(out, err) as view:
        time.sleep(0.1)
        view.show(ReasoningSummaryDelta("pondering", 0))
    assert err.getvalue() == "pondering\n"
    monkeypatch.setenv("NO_COLOR", "1")
    err = Tty()
    with ChatView(out, err) as view:
        view.show(ReasoningSummaryDelta("plain", 0))
    assert "\x1b[2m" not in err.getvalue() and "plain" in err.getvalue()


# --- providers from Codex's config ------------------------------------------------------------


def write_config(server: EmbeddedServer, extra: str = "") -> Path:
    path = Path(os.environ["CODEX_HOME"]) / "config.toml"
    path.write_text(f'[model_providers.local]\nname = "Local"\nbase_url = "{server.base_url}"\n'
                    f'env_key = "LOCAL_KEY"\n{extra}', encoding="utf-8")
    return path


def test_provider_from_codex_config(capsys: Capture, server: EmbeddedServer,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(server, 'http_headers = { "X-From" = "config" }\n')
    monkeypatch.setenv("LOCAL_KEY", "sk-local-1234")
    code, out, _ = run(capsys, "chat", "--provider", "local", "Hi")
    assert (code, out) == (0, "You said: Hi\n")
    headers, _ = last_request(server)
    assert headers["authorization"] == "Bearer sk-local-1234" and headers["x-from"] == "config"


def test_models_and_compact_take_a_config_provider(capsys: Capture, server: EmbeddedServer,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(server)
    monkeypatch.setenv("LOCAL_KEY", "sk-local-5678")
    code, out, _ = run(capsys, "models", "--provider", "local")
    assert code == 0 and out.strip()
    assert last_request(server)[0]["authorization"] == "Bearer sk-local-5678"
    code, out, _ = run(capsys, "compact", "--provider", "local", "Keep this")
    assert code == 0 and "Keep this" in out


def test_config_flag_names_another_file(capsys: Capture, server: EmbeddedServer,
                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = tmp_path / "other.toml"
    other.write_text(f'[model_providers.o]\nbase_url = "{server.base_url}"\n', encoding="utf-8")
    assert run(capsys, "chat", "--provider", "o", "--config", str(other), "Yo")[:2] == (
        0, "You said: Yo\n")


# --- bad input: one line on stderr, exit code by kind --------------------------------------------


def one_line_error(err: str) -> str:
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("codexapi: error: ")
    return err


def code_for(kind: type[BaseException]) -> int:
    return next(code for k, code in EXIT_CODES if issubclass(kind, k))


def test_unknown_provider(capsys: Capture, server: EmbeddedServer) -> None:
    write_config(server)
    code, out, err = run(capsys, "chat", "--provider", "nope", "Hi")
    assert code == code_for(ConfigError) == 2 and out == ""
    line = one_line_error(err)
    assert "'nope'" in line and "lmstudio, local, ollama, openai, oss" in line


def test_config_syntax_error(capsys: Capture) -> None:
    path = Path(os.environ["CODEX_HOME"]) / "config.toml"
    path.write_text("[model_providers.x]\nbase_url = 'http://127.0.0.1:1/v1'\nname = = 1\n")
    code, _, err = run(capsys, "chat", "--provider", "x", "Hi")
    line = one_line_error(err)
    assert code == 2 and str(path) in line and "line 3" in line


def test_unset_env_key(capsys: Capture, server: EmbeddedServer) -> None:
    write_config(server)
    code, _, err = run(capsys, "chat", "--provider", "local", "Hi")
    line = one_line_error(err)
    assert code == code_for(AuthError) == 3 and "LOCAL_KEY" in line and "AuthError" in line


def test_malformed_proxy(capsys: Capture, server: EmbeddedServer,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:notaport")
    code, _, err = run(capsys, "chat", "--base-url", server.base_url, "Hi")
    line = one_line_error(err)
    assert code == 2 and "HTTPS_PROXY" in line and "ConfigError" in line


def test_missing_ca_bundle(capsys: Capture, server: EmbeddedServer, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEX_CA_CERTIFICATE", str(tmp_path / "corp-ca.pem"))
    code, _, err = run(capsys, "chat", "--base-url", server.base_url, "Hi")
    line = one_line_error(err)
    assert code == 2 and "CODEX_CA_CERTIFICATE" in line and "corp-ca.pem" in line


def test_empty_stdin(capsys: Capture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("  \n"))
    code, _, err = run(capsys, "chat", "-")
    assert code == 2 and "empty" in one_line_error(err)


def test_connection_refused_is_a_transport_error(capsys: Capture) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = Path(os.environ["CODEX_HOME"]) / "config.toml"
    path.write_text(f'[model_providers.dead]\nbase_url = "http://127.0.0.1:{port}/v1"\n'
                    "request_max_retries = 0\n", encoding="utf-8")
    started = time.monotonic()
    code, _, err = run(capsys, "chat", "--provider", "dead", "--timeout", "2", "Hi")
    line = one_line_error(err)
    assert code == code_for(TransportError) == 5 and "TransportError" in line
    assert f"127.0.0.1:{port}" in line
    assert time.monotonic() - started < 1.0  # request_max_retries = 0: one try only


def test_api_error_exit_code(capsys: Capture, server: EmbeddedServer) -> None:
    # A path the server does not route: 404 from the API.
    code, _, err = run(capsys, "chat", "--base-url", server.base_url + "/nowhere", "Hi")
    line = one_line_error(err)
    assert code == code_for(ApiError) == 4 and "404" in line


def test_exit_codes_are_distinct_per_kind() -> None:
    codes = dict((k.__name__, c) for k, c in EXIT_CODES)
    assert codes["ConfigError"] == 2 and codes["AuthError"] == 3 and codes["ApiError"] == 4
    assert codes["TransportError"] == 5 and codes["StreamError"] == code_for(StreamError)
    assert codes["CodexApiError"] == 1


def test_as_a_real_process(server: EmbeddedServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if "PROXY" not in k.upper()}
    proc = subprocess.run(
        [sys.executable, "-m", "codexapi", "chat", "--json", "--base-url", server.base_url,
         "--no-plugins", "--usage", "-"], input="piped in", capture_output=True, text=True,
        timeout=30, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "".join(e.get("delta", "") for e in events if e["type"] == "output_text_delta") \
        == "You said: piped in"
    assert proc.stderr.startswith("tokens: ")


def test_readme_documents_every_exit_code() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {int(m.group(1)): m.group(2) for m in re.finditer(r"^\| (\d+) \| (.*) \|$", readme,
                                                             flags=re.MULTILINE)}
    for kind, code in EXIT_CODES:
        if kind.__name__ != "CodexApiError":
            assert kind.__name__ in rows[code], (kind, code)
    assert 1 in rows and 130 in rows
