"""The command line as a new user meets it: `--help`, which server `chat` talks to, retries on
the spinner, errors as one line (or one JSON line), plugin warnings, unwritable output, and
`serve` refusing bad addresses in one line."""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.proxy_server import ProxyServer

from codexapi import plugins as plugin_loader
from codexapi.cli.commands import COMMANDS, EXIT_MEANINGS, build_parser, main
from codexapi.cli.options import EMBEDDED_NOTICE, choose_provider
from codexapi.cli.terminal import format_retry
from codexapi.errors import ApiError, TransportError
from codexapi.server import EmbeddedServer

Capture = pytest.CaptureFixture[str]
CLI = Path(sys.executable).with_name("codexapi")


def run(capsys: Capture, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# --- --help ------------------------------------------------------------------------------------


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_help_lists_every_command_and_the_exit_codes(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name, (_, _, summary) in COMMANDS.items():
        line = next(li for li in out.splitlines() if li.strip().startswith(name + " "))
        assert summary.split()[0] in line, (name, line)
    assert {"chat", "models", "compact", "serve", "plugins"} <= set(COMMANDS)
    codes = out[out.index("exit codes:"):]
    for code, meaning in EXIT_MEANINGS:
        assert f"{code:>3}  {meaning.split()[0]}" in codes
    assert "``" not in out and ":class:" not in out  # no docstring markup


def test_every_option_has_help_and_shows_its_default(capsys: Capture) -> None:
    parser = build_parser()
    assert all(action.help for action in parser._actions
               if not isinstance(action, argparse._SubParsersAction))
    for name, sub in subparsers(parser).items():
        for action in sub._actions:
            assert action.help, (name, action.dest)
        help_text = sub.format_help()
        for action in sub._actions:
            if action.option_strings and action.default not in (None, False, [],
                                                                argparse.SUPPRESS):
                assert f"(default: {action.default})" in " ".join(help_text.split()), (
                    name, action.dest)
    serve = " ".join(subparsers(parser)["serve"].format_help().split())
    assert "(default: 127.0.0.1)" in serve and "(default: 8000)" in serve


# --- which server `chat` talks to --------------------------------------------------------------


def args_for(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["chat", *argv, "Hi"])


def test_nothing_configured_means_the_embedded_server(capsys: Capture) -> None:
    assert choose_provider(args_for(), environ={}) is None
    code, out, err = run(capsys, "chat", "Hi")
    assert (code, out) == (0, "You said: Hi\n")
    assert err.splitlines()[0] == EMBEDDED_NOTICE


def test_an_api_key_alone_means_the_openai_api() -> None:
    provider = choose_provider(args_for(), environ={"OPENAI_API_KEY": "sk-test"})
    assert provider is not None and provider.base_url == "https://api.openai.com/v1"
    assert choose_provider(args_for(), environ={"OPENAI_API_KEY": "  "}) is None


def test_base_url_flag_then_variable_win_over_the_api_key() -> None:
    env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:1/v1"}
    assert choose_provider(args_for(), environ=env).base_url == "http://127.0.0.1:1/v1"  # type: ignore[union-attr]
    flag = choose_provider(args_for("--base-url", "http://127.0.0.1:2/v1"), environ=env)
    assert flag is not None and flag.base_url == "http://127.0.0.1:2/v1"


def test_with_an_api_key_chat_really_goes_to_api_openai_com(capsys: Capture,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    # Through a local proxy that records where it was asked to go and refuses to leave the
    # machine: the request is aimed at the OpenAI API, and nothing leaves 127.0.0.1.
    with ProxyServer() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-real")
        code, out, err = run(capsys, "chat", "--retries", "0", "Hi")
    assert proxy.requests == [("CONNECT", "api.openai.com:443")]
    assert code == 5 and out == "" and EMBEDDED_NOTICE not in err
    assert "sk-test-not-real" not in err


# --- retries, --retries, --json errors -------------------------------------------------------


def test_retry_label() -> None:
    error = ApiError(503, "Service Unavailable")
    assert format_retry(0.4, 2, 5, error) == "retrying in 0.4 s, attempt 2/5: 503"
    assert format_retry(0.05, 3, 4, TransportError("connection\nreset")) == (
        "retrying in 0.05 s, attempt 3/4: connection reset")


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_spinner_shows_the_retry(server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch,
                                     capsys: Capture) -> None:
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    code = main(["chat", "--base-url", server.base_url, "--model", "fault:503x1:0.4",
                 "--conversation-id", "spinner-retry", "Hi"])
    assert code == 0 and capsys.readouterr().out == "You said: Hi\n"
    shown = err.getvalue()
    assert "retrying in 0.4 s, attempt 2/5: 503" in shown
    assert "codexapi: warning: retrying" not in shown  # the spinner says it, not a log line


def test_off_a_terminal_a_retry_is_one_warning_line(server: EmbeddedServer, capsys: Capture
                                                    ) -> None:
    code, out, err = run(capsys, "chat", "--base-url", server.base_url, "--model",
                         "fault:503x1:0.1", "--conversation-id", "log-retry", "Hi")
    assert code == 0 and out == "You said: Hi\n"
    warnings = [line for line in err.splitlines() if line.startswith("codexapi: warning:")]
    assert len(warnings) == 1 and "retrying" in warnings[0] and "0.100s" in warnings[0]


def test_retries_flag(server: EmbeddedServer, capsys: Capture) -> None:
    code, _, err = run(capsys, "chat", "--base-url", server.base_url, "--retries", "0",
                       "--model", "fault:503x1:0.1", "--conversation-id", "retries-0", "Hi")
    assert code == 4 and "api error 503" in err and "retrying" not in err
    code, out, _ = run(capsys, "chat", "--base-url", server.base_url, "--retries", "1",
                       "--model", "fault:503x1:0.1", "--conversation-id", "retries-1", "Hi")
    assert (code, out) == (0, "You said: Hi\n")
    code, _, err = run(capsys, "chat", "--retries", "-1", "Hi")
    assert code == 2 and "--retries must be 0 or more" in err


def test_json_error_is_one_json_line_on_stdout(server: EmbeddedServer, capsys: Capture) -> None:
    code, out, err = run(capsys, "chat", "--json", "--base-url", server.base_url + "/nowhere",
                         "Hi")
    assert code == 4
    line = json.loads(out.splitlines()[-1])
    assert line["type"] == "error" and line["error"] == "ApiError" and line["exit_code"] == 4
    assert "404" in line["message"]
    assert err.count("codexapi: error: ApiError") == 1


# --- plugins that fail ---------------------------------------------------------------------------


@pytest.fixture
def fresh_plugins() -> Iterator[None]:
    plugin_loader.reset_cache()
    yield
    plugin_loader.reset_cache()


def test_a_plugin_name_that_matches_nothing_is_one_warning(
        fresh_plugins: None, monkeypatch: pytest.MonkeyPatch, capsys: Capture) -> None:
    monkeypatch.setenv("CODEXAPI_PLUGINS", "no-such-plugin")
    code, out, err = run(capsys, "chat", "Hi")
    assert (code, out) == (0, "You said: Hi\n")
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == ["codexapi: warning: CODEXAPI_PLUGINS names 'no-such-plugin', which no "
                        "installed codexapi plugin provides"]


def test_a_plugin_that_fails_to_import_is_one_warning(fresh_plugins: None, tmp_path: Path
                                                      ) -> None:
    info = tmp_path / "broken_dist-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-dist\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[codexapi]\nbroken = broken_plugin_xyz\n")
    (tmp_path / "broken_plugin_xyz.py").write_text("import no_such_dependency_xyz\n")
    proc = subprocess.run([str(CLI), "chat", "Hi"], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
                                             "PYTHONPATH": str(tmp_path)})
    assert proc.returncode == 0 and proc.stdout == "You said: Hi\n", proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "'broken'" in warnings[0], proc.stderr
    assert "no_such_dependency_xyz" in warnings[0] and "Traceback" not in proc.stderr


# --- output that cannot be written ---------------------------------------------------------------


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full (Linux)")
def test_a_full_disk_is_one_line_not_a_traceback() -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run([str(CLI), "chat", "Hello"], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                          "HOME": "/nonexistent"})
    lines = [li for li in proc.stderr.splitlines() if li != EMBEDDED_NOTICE]
    assert proc.returncode == 74, proc.stderr
    assert lines == ["codexapi: error: cannot write the output: No space left on device"]


def test_a_closed_pipe_is_quiet() -> None:
    proc = subprocess.run(f"'{CLI}' models --json | head -c 1", shell=True, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                      "HOME": "/nonexistent"})
    assert proc.stdout == "{"
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr


# --- serve ---------------------------------------------------------------------------------------


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("codexapi: error: ConfigError: "), err
    return err


def test_serve_on_a_busy_port(capsys: Capture) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(capsys, "serve", "--port", str(port))
    assert code == 2 and "already in use" in one_line(err) and str(port) in err


@pytest.mark.parametrize(("argv", "why"), [
    (["--port", "70000"], "out of range"),
    (["--port", "-1"], "out of range"),
    (["--host", "no-such-host.invalid", "--port", "0"], "cannot listen on --host"),
    (["--host", "192.0.2.1", "--port", "0"], "not one of this machine's"),
    (["--host", " ", "--port", "0"], "--host is empty"),
])
def test_serve_bad_address(argv: list[str], why: str, capsys: Capture) -> None:
    code, _, err = run(capsys, "serve", *argv)
    assert code == 2 and why in one_line(err)


def serve(*argv: str) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen([str(CLI), "serve", "--port", "0", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "embedded server on http://" in line, line
    return proc, int(line.split(" on ", 1)[1].split()[0].rsplit(":", 1)[1].split("/")[0])


def stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    _, err = proc.communicate(timeout=10)
    return err


def post(port: int, key: str | None) -> int:
    import urllib3

    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = json.dumps({"model": "m", "input": "Hi", "stream": False}).encode()
    response = urllib3.request("POST", f"http://127.0.0.1:{port}/v1/responses", body=body,
                               headers=headers, retries=False, timeout=10)
    return int(response.status)


def test_serve_api_keys_are_required() -> None:
    proc, port = serve("--api-key", "key-one", "--api-key", "key-two")
    try:
        assert post(port, None) == 401
        assert post(port, "wrong") == 401
        assert post(port, "key-one") == 200 and post(port, "key-two") == 200
    finally:
        err = stop(proc)
    assert "key-one" not in err and "warning" not in err  # loopback: no warning


def test_serve_on_all_interfaces_warns() -> None:
    proc, port = serve("--host", "0.0.0.0")
    try:
        assert post(port, None) == 200  # reached through 127.0.0.1 only
    finally:
        err = stop(proc)
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "reachable from other machines" in warning[0]
    assert "--api-key is not set" in warning[0]


# --- --deadline ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("plan", "seconds", "partial"), [
    ("stallhead:10", "1", ""),             # no response head at all
    ("stall:10@6", "2", "You said:"),      # the answer stops midway
    ("503x20:0.3", "1", ""),               # retries that would go on for seconds
])
def test_deadline_bounds_the_whole_command(plan: str, seconds: str, partial: str,
                                           server: EmbeddedServer, capsys: Capture) -> None:
    code, out, err = run(capsys, "chat", "--base-url", server.base_url, "--deadline", seconds,
                         "--retries", "20", "--model", f"fault:{plan}", "--conversation-id",
                         f"deadline-{plan}", "Hi there")
    assert code == 5, err
    assert out.startswith(partial) and "there" not in out
    line = err.splitlines()[-1]
    assert line.startswith("codexapi: error: DeadlineExceeded: the call did not finish within "
                           f"its deadline of {seconds} s")
    assert "Traceback" not in err


def test_deadline_that_is_not_reached_changes_nothing(server: EmbeddedServer, capsys: Capture
                                                      ) -> None:
    assert run(capsys, "chat", "--base-url", server.base_url, "--deadline", "30", "Hi")[:2] == (
        0, "You said: Hi\n")


@pytest.mark.parametrize("bad", ["0", "-1", "inf", "nan", "soon"])
def test_a_deadline_that_is_not_positive_seconds_is_a_usage_error(bad: str, capsys: Capture
                                                                  ) -> None:
    with pytest.raises(SystemExit) as info:
        main(["chat", "--deadline", bad, "Hi"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert f"argument --deadline: must be a positive number of seconds, got '{bad}'" in err


def test_deadline_bounds_compact(server: EmbeddedServer, capsys: Capture) -> None:
    started = time.monotonic()
    code, out, err = run(capsys, "compact", "--base-url", server.base_url, "--deadline", "1",
                         "--model", "fault:stallhead:10", "Hi there")
    assert code == 5 and out == "" and time.monotonic() - started < 5
    assert "DeadlineExceeded: the call did not finish within its deadline of 1 s" in err


def test_deadline_is_per_request_in_a_batch(server: EmbeddedServer, tmp_path: Path,
                                            capsys: Capture) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "request": {"input": "ok"}}\n'
                   '{"id": 2, "request": {"input": "slow", "model": "fault:stallhead:10"}}\n')
    out = tmp_path / "out.jsonl"
    started = time.monotonic()
    code, _, _ = run(capsys, "batch", str(src), "-o", str(out), "--base-url", server.base_url,
                     "--no-plugins", "--progress", "none", "--deadline", "1")
    assert code == 1 and time.monotonic() - started < 5
    results = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert results[1]["status"] == "ok"
    assert results[2]["status"] == "error" and results[2]["error"]["type"] == "DeadlineExceeded"


def test_a_usage_error_is_one_line_exit_2(capsys: Capture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--port", "abc"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1
    assert err == ("codexapi serve: error: argument --port: invalid int value: 'abc' (see "
                   "'codexapi serve --help')\n")


def test_an_unknown_wire_is_one_line_naming_the_registered_ones(capsys: Capture) -> None:
    code, out, err = run(capsys, "chat", "--wire", "carrier-pigeon", "--no-plugins", "Hi")
    assert code == 2 and out == ""
    line = err.splitlines()[-1]
    assert line.startswith("codexapi: error: ConfigError: ") and "carrier-pigeon" in line
    assert "registered wires: 'chat', 'responses', 'responses_websocket'" in line
