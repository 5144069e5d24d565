"""The real Codex CLI (npm ``@openai/codex``, pinned) against the embedded server.

The CLI is installed by ``.ci/install-codex-cli`` into a cache folder outside the repository
(idempotent: a no-op once installed; ``.ci/run`` runs it before the tests). Each test runs
``codex exec`` with its own temporary ``CODEX_HOME`` and ``HOME``, and checks both what the CLI
printed and what the server received. Skipped only when npm is absent, and never under CI.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from conftest import ROOT

from codexapi.server import EmbeddedServer
from codexapi.server.catalog import INSTRUCTIONS, MODELS_ETAG
from codexapi.server.faults import FAULT_HEADER

INSTALLER = ROOT / ".ci" / "install-codex-cli"
VERSION = "0.171.0"
TOKEN = "sk-codexapi-cli-test"

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def codex() -> Path:
    """The ``codex`` launcher, installed on first use."""
    done = subprocess.run([str(INSTALLER)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "CODEX_CLI_VERSION": VERSION})
    if done.returncode != 0 and shutil.which("npm") is None and not os.environ.get("CI"):
        pytest.skip("npm is not installed, so the Codex CLI cannot be installed")
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


@attrs.frozen
class Run:
    returncode: int
    stdout: str
    stderr: str
    seconds: float


@attrs.define
class Cli:
    """``codex exec`` in a temporary CODEX_HOME, with a config.toml of our choosing."""

    binary: Path
    home: Path
    workdir: Path
    env: dict[str, str] = attrs.Factory(dict)

    def configure(self, toml: str) -> None:
        (self.home / "config.toml").write_text(toml)

    def exec(self, *args: str, timeout: float = 60) -> Run:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "HOME": str(self.home.parent), "CODEX_HOME": str(self.home), **self.env}
        start = time.monotonic()
        done = subprocess.run([str(self.binary), "exec", "--skip-git-repo-check", *args],
                              cwd=self.workdir, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout)
        return Run(done.returncode, done.stdout, done.stderr, time.monotonic() - start)


@pytest.fixture
def cli(codex: Path, tmp_path: Path) -> Cli:
    home, work = tmp_path / "codex-home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    return Cli(codex, home, work)


@pytest.fixture
def server() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as s:
        yield s


#: Keeps the CLI off the network: its curated-plugin sync would try GitHub at startup.
OFFLINE = "\n[features]\nplugins = false\n"


def custom_provider(base_url: str, *, auth: str = "env", idle_ms: int = 4000,
                    fault: str | None = None) -> str:
    lines = [
        'model = "gpt-5-codex"',
        'model_provider = "codexapi"',
        "[model_providers.codexapi]",
        'name = "codexapi"',
        f'base_url = "{base_url}"',
        'wire_api = "responses"',
        "request_max_retries = 2",
        "stream_max_retries = 2",
        f"stream_idle_timeout_ms = {idle_ms}",
    ]
    if auth == "env":
        lines.append('env_key = "CODEXAPI_TEST_KEY"')
    if fault:
        lines.append(f'http_headers = {{ "{FAULT_HEADER}" = "{fault}" }}')
    if auth == "command":
        lines += ["[model_providers.codexapi.auth]", f'command = "{sys.executable}"',
                  "args = [\"-c\", \"print('" + TOKEN + "')\"]"]
    return "\n".join(lines) + "\n" + OFFLINE


def openai_provider(base_url: str) -> str:
    return f'model = "gpt-5-codex"\nopenai_base_url = "{base_url}"\n' + OFFLINE


def posts(server: EmbeddedServer) -> list[tuple[str, dict[str, str], Any]]:
    """(transport, headers, body) of every Responses turn the server got, HTTP or WS."""
    return [(method, headers, body) for method, path, headers, body in list(server.requests)
            if path == "/responses" and (method == "POST" or method == "WS")]


def last_item(body: Any) -> dict[str, Any]:
    return dict(body["input"][-1])


def text_of(item: dict[str, Any]) -> str:
    content = item.get("content")
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content or item.get("output") or "")


def test_text_turn_against_codexapi_serve(cli: Cli) -> None:
    serve = subprocess.Popen([sys.executable, "-m", "codexapi", "serve", "--port", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert serve.stdout is not None
        banner = serve.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/v1)", banner)
        assert match, banner
        cli.configure(custom_provider(match.group(1)))
        cli.env["CODEXAPI_TEST_KEY"] = TOKEN
        run = cli.exec("Say hello")
    finally:
        serve.terminate()
        serve.wait(timeout=10)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "You said: Say hello"


def test_command_auth_provider_accepts_the_model_list(cli: Cli,
                                                      server: EmbeddedServer) -> None:
    cli.configure(custom_provider(server.base_url, auth="command"))
    run = cli.exec("Say hello")
    assert run.returncode == 0, run.stderr
    assert "Model metadata" not in run.stderr and "failed to decode models" not in run.stderr
    cache = json.loads((cli.home / "models_cache.json").read_text())
    assert [m["slug"] for m in cache["models"]] == ["gpt-5", "gpt-5-codex", "gpt-4o-mini"]
    assert cache["etag"] == MODELS_ETAG
    listed = [h for m, p, h, _ in server.requests if (m, p) == ("GET", "/models")]
    assert listed and all(h.get("authorization") == f"Bearer {TOKEN}" for h in listed)
    # The reply's X-Models-Etag matched the cached list's, so no refetch followed the turn
    # (with a different value the CLI fetches /models again right after it).
    assert [p for _, p, _, _ in server.requests][-1] == "/responses"
    (_, headers, body), = posts(server)
    # With the list accepted, the base instructions are the model's template.
    assert text_of(body["input"][0]) == INSTRUCTIONS
    assert body["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert run.stdout.strip() == "You said: Say hello"


def test_a_tool_call_runs_echo_and_the_follow_up_reports_it(cli: Cli,
                                                            server: EmbeddedServer) -> None:
    cli.configure(custom_provider(server.base_url))
    cli.env["CODEXAPI_TEST_KEY"] = TOKEN
    run = cli.exec("Please use a tool to run `echo hi-from-codex`")
    assert run.returncode == 0, run.stderr
    _, second = posts(server)
    output = last_item(second[2])
    assert output["type"] == "function_call_output"
    assert "hi-from-codex" in text_of(output) and "failed to parse" not in text_of(output)
    assert "returned:" in run.stdout and "hi-from-codex" in run.stdout
    # The CLI echoes the turn state the first reply set.
    assert second[1].get("x-codex-turn-state") in server.httpd.turn_states_echoed


def test_openai_provider_speaks_websocket_without_fallback(cli: Cli,
                                                          server: EmbeddedServer) -> None:
    cli.configure(openai_provider(server.base_url))
    cli.env["OPENAI_API_KEY"] = TOKEN
    run = cli.exec("Please use a tool to run `echo over-ws`")
    assert run.returncode == 0, run.stderr
    assert "Falling back" not in run.stderr and "Reconnecting" not in run.stderr
    turns = posts(server)
    assert {t for t, _, _ in turns} == {"WS"}
    prewarm, *asked = turns
    assert prewarm[2].get("generate") is False and len(asked) == 2
    # Over WebSocket the follow-up builds on the first turn's response.
    assert asked[1][2]["previous_response_id"]
    upgrades = [h for m, p, h, _ in server.requests if (m, p) == ("GET", "/responses")]
    assert upgrades and upgrades[0]["openai-beta"].startswith("responses_websockets=")
    assert "over-ws" in run.stdout


def test_inline_compaction_on_a_resumed_session(cli: Cli, server: EmbeddedServer) -> None:
    cli.configure(custom_provider(server.base_url))
    cli.env["CODEXAPI_TEST_KEY"] = TOKEN
    assert cli.exec("Say hello").returncode == 0
    run = cli.exec("resume", "--last", "-c", "model_auto_compact_token_limit=200", "What next")
    assert run.returncode == 0, run.stderr
    assert "context compacted" in run.stderr
    _, compaction, turn = posts(server)
    assert text_of(last_item(compaction[2])).startswith(
        "You are performing a CONTEXT CHECKPOINT COMPACTION")
    assert turn[1]["x-codex-window-id"].endswith(":1")
    assert any("Another language model" in text_of(i) for i in turn[2]["input"])
    assert run.stdout.strip() == "You said: What next"


def test_remote_compaction_v2_on_a_resumed_session(cli: Cli, server: EmbeddedServer) -> None:
    cli.configure(openai_provider(server.base_url))
    cli.env["OPENAI_API_KEY"] = TOKEN
    assert cli.exec("Say hello").returncode == 0
    run = cli.exec("resume", "--last", "-c", "model_auto_compact_token_limit=200", "What next")
    assert run.returncode == 0, run.stderr
    assert "expected exactly one compaction" not in run.stderr
    assert "context compacted" in run.stderr
    triggers = [b for _, _, b in posts(server) if last_item(b) == {"type": "compaction_trigger"}]
    assert len(triggers) == 1
    assert run.stdout.strip() == "You said: What next"


@pytest.mark.parametrize(("plan", "idle_ms", "ok", "attempts", "printed"), [
    ("429:1", 4000, False, 3, "exceeded retry limit, last status: 429"),
    ("500x1", 4000, True, 2, ""),
    ("dropx1@3", 4000, True, 2, "Reconnecting... 1/2"),
    ("stallx1:3@3", 1000, True, 2, "Reconnecting... 1/2"),
])
def test_fault_plans_end_as_the_cli_expects(cli: Cli, server: EmbeddedServer, plan: str,
                                            idle_ms: int, ok: bool, attempts: int,
                                            printed: str) -> None:
    cli.configure(custom_provider(server.base_url, idle_ms=idle_ms, fault=plan))
    cli.env["CODEXAPI_TEST_KEY"] = TOKEN
    run = cli.exec("Say hello")
    assert (run.returncode == 0) is ok, run.stderr
    assert len(posts(server)) == attempts
    assert printed in run.stderr
    if ok:
        assert run.stdout.strip() == "You said: Say hello"
    fault_id = posts(server)[0][1]["session-id"]
    assert server.faults.events_for(fault_id), "the faults are counted per CLI session"


def calls_in(body: Any) -> list[dict[str, Any]]:
    return [i for i in body["input"] if i.get("type") in ("function_call", "custom_tool_call")]


def test_a_plan_of_several_commands_runs_step_by_step(cli: Cli, server: EmbeddedServer) -> None:
    cli.configure(custom_provider(server.base_url))
    cli.env["CODEXAPI_TEST_KEY"] = TOKEN
    run = cli.exec("Use a tool to run `echo step-one`, then `echo step-two`")
    assert run.returncode == 0, run.stderr
    turns = posts(server)
    assert len(turns) == 3  # one call per turn, then the answer
    assert [len(calls_in(body)) for _, _, body in turns] == [0, 1, 2]
    ran = [json.loads(c["arguments"])["cmd"] for c in calls_in(turns[-1][2])]
    assert ran == ["echo step-one", "echo step-two"]
    answer = run.stdout.strip().splitlines()
    assert answer[0].startswith("Tool call_") and "returned:" in answer[0]
    assert answer.index("step-one") < answer.index("step-two")


def test_a_plan_runs_over_websocket_from_the_previous_response(
        cli: Cli, server: EmbeddedServer) -> None:
    cli.configure(openai_provider(server.base_url))
    cli.env["OPENAI_API_KEY"] = TOKEN
    run = cli.exec("Use a tool to run `echo ws-one`, then `echo ws-two`")
    assert run.returncode == 0, run.stderr
    prewarm, *turns = posts(server)
    assert prewarm[2]["generate"] is False
    assert {t for t, _, _ in turns} == {"WS"} and len(turns) == 3
    # Each later turn sends only its new items: the server follows the plan from its chain.
    assert all(body["previous_response_id"] for _, _, body in turns[1:])
    answer = run.stdout.strip().splitlines()
    assert answer.index("ws-one") < answer.index("ws-two")


def test_parallel_calls_arrive_in_one_response(cli: Cli, server: EmbeddedServer) -> None:
    cli.configure(custom_provider(server.base_url))
    cli.env["CODEXAPI_TEST_KEY"] = TOKEN
    run = cli.exec("Use a tool to run `echo par-one` and `echo par-two`")
    assert run.returncode == 0, run.stderr
    first, second = posts(server)
    assert first[2]["parallel_tool_calls"] is True
    outputs = [i for i in second[2]["input"] if i["type"] == "function_call_output"]
    assert len(calls_in(second[2])) == 2 and len(outputs) == 2
    assert "par-one" in text_of(outputs[0]) and "par-two" in text_of(outputs[1])
    assert "par-one" in run.stdout and "par-two" in run.stdout


def test_a_patch_in_the_prompt_is_applied_to_disk(cli: Cli, server: EmbeddedServer) -> None:
    # With command auth the CLI takes the model list, which asks for freeform apply_patch.
    cli.configure(custom_provider(server.base_url, auth="command"))
    patch = "*** Begin Patch\n*** Add File: notes/hello.txt\n+written by apply_patch\n" \
            "*** End Patch"
    run = cli.exec("-s", "workspace-write", f"Apply this patch:\n{patch}")
    assert run.returncode == 0, run.stderr
    assert (cli.workdir / "notes" / "hello.txt").read_text() == "written by apply_patch\n"
    first, second = posts(server)
    (tool,) = [t for t in first[2]["tools"] if t.get("name") == "apply_patch"]
    assert tool["type"] == "custom"
    (call,) = calls_in(second[2])
    assert call["type"] == "custom_tool_call" and call["input"] == patch + "\n"
    output = last_item(second[2])
    assert output["type"] == "custom_tool_call_output" and "Success" in text_of(output)


def test_encrypted_reasoning_is_carried_across_turns(cli: Cli, server: EmbeddedServer) -> None:
    cli.configure(custom_provider(server.base_url))
    cli.env["CODEXAPI_TEST_KEY"] = TOKEN
    run = cli.exec("Please use a tool to run `echo sealed`")
    assert run.returncode == 0, run.stderr
    first, second = posts(server)
    assert first[2]["store"] is False
    assert "reasoning.encrypted_content" in first[2]["include"]
    (reasoning,) = [i for i in second[2]["input"] if i.get("type") == "reasoning"]
    token = reasoning["encrypted_content"]
    # The CLI sent back the ciphertext this server issued, and the server opened it.
    assert server.httpd.model.seal.open(token) == reasoning["summary"][0]["text"]
    assert "sealed" in run.stdout


@pytest.mark.parametrize(("plan", "printed"), [
    ("usage_limit:5400", "You\u2019ve hit your usage limit"),
    ("quota:usage_not_included", "To use Codex with your ChatGPT plan, upgrade to Plus"),
    ("quota:insufficient_quota", "Quota exceeded. Check your plan and billing details."),
])
def test_final_429s_stop_the_cli_after_one_request(cli: Cli, server: EmbeddedServer,
                                                   plan: str, printed: str) -> None:
    cli.configure(custom_provider(server.base_url, fault=plan))
    cli.env["CODEXAPI_TEST_KEY"] = TOKEN
    run = cli.exec("Say hello")
    assert run.returncode != 0
    assert printed in run.stderr
    assert len(posts(server)) == 1
    assert "Reconnecting" not in run.stderr


@contextlib.contextmanager
def serving(*args: str) -> Iterator[str]:
    """``codexapi serve --port 0 ARGS`` in a subprocess; yields its base URL."""
    # stderr to a file: a pipe nobody reads could fill and stall the server.
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "codexapi", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=errors, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            assert proc.stdout is not None
            for _ in range(3):
                line = proc.stdout.readline()
                if match := re.search(r"server on (http://127\.0\.0\.1:\d+/v1)", line):
                    break
            else:
                raise AssertionError(f"no base URL from codexapi serve {args}")
            yield match.group(1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@pytest.mark.parametrize("provider", ["custom", "openai"])
def test_a_session_recorded_once_replays_offline(codex: Path, tmp_path: Path,
                                                 server: EmbeddedServer,
                                                 provider: str) -> None:
    cassette = tmp_path / "session.yaml"
    prompt = "Use a tool to run `echo recorded-once`"

    def run_against(base_url: str, name: str) -> Run:
        home, work = tmp_path / name / "codex-home", tmp_path / name / "work"
        home.mkdir(parents=True)
        work.mkdir()
        cli = Cli(codex, home, work, env={"CODEXAPI_TEST_KEY": TOKEN, "OPENAI_API_KEY": TOKEN})
        cli.configure(custom_provider(base_url) if provider == "custom"
                      else openai_provider(base_url))
        return cli.exec(prompt)

    with serving("--record", str(cassette), "--upstream", server.base_url) as proxy:
        recorded = run_against(proxy, "record")
    assert recorded.returncode == 0, recorded.stderr
    assert "recorded-once" in recorded.stdout
    turns = len(posts(server))
    text = cassette.read_text()
    assert TOKEN not in text
    if provider == "custom":  # (the openai provider sends no key from OPENAI_API_KEY)
        assert re.search(r"authorization:\n +- <redacted>", text, re.IGNORECASE)
    with serving("--cassette", str(cassette)) as replay:
        replayed = run_against(replay, "replay")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout == recorded.stdout  # the same answer, word for word
    assert len(posts(server)) == turns  # the replay never reached the real server
    if provider == "openai":
        assert "Falling back" not in replayed.stderr and "Reconnecting" not in replayed.stderr
        assert "uri: ws://127.0.0.1:8000/v1/responses" in text
