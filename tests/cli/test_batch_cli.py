"""``codexapi batch``: the summary, exit codes, and bad input refused (exit 2, one line naming
the line or setting, nothing sent); a SIGKILL mid-run loses no finished result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT
from support.batch_helpers import UsageLimit, ids, lines, model_calls, write_input

from codexapi import cli
from codexapi.batch import dask_engine
from codexapi.server import EmbeddedServer


def batch(server: EmbeddedServer, *args: str) -> int:
    return cli.main(["batch", *args, "--base-url", server.base_url, "--no-plugins",
                     "--progress", "none"])


def test_summary_and_json_summary(server: EmbeddedServer, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    src = write_input(tmp_path / "in.jsonl", 10)
    out = tmp_path / "out.jsonl"
    assert batch(server, str(src), "-o", str(out), "-c", "3") == 0
    text = capsys.readouterr().out
    assert "10 ok, 0 failed, 0 left" in text and "tokens: 30 in, 40 out" in text
    assert "requests/s" in text
    assert batch(server, str(src), "-o", str(out), "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["ok"], summary["skipped"], summary["total"]) == (0, 10, 0)
    assert set(summary) >= {"failed", "input_tokens", "output_tokens", "elapsed_seconds",
                            "requests_per_second"}


def test_lines_without_a_model_take_the_default_model(server: EmbeddedServer,
                                                      tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "request": {"input": "hi"}}\n')
    before = len(server.requests)
    assert batch(server, str(src), "-o", str(tmp_path / "o.jsonl"), "-m", "my-model") == 0
    assert server.requests[before][3]["model"] == "my-model"


def test_progress_lines_when_not_a_terminal(server: EmbeddedServer, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    src = write_input(tmp_path / "in.jsonl", 5)
    assert cli.main(["batch", str(src), "-o", str(tmp_path / "o.jsonl"), "--base-url",
                     server.base_url, "--no-plugins", "--progress-interval", "0"]) == 0
    err = capsys.readouterr().err
    assert "batch: 5/5 done, 0 failed" in err and "req/s, ETA" in err


def test_failed_requests_exit_1(own_failing: EmbeddedServer, tmp_path: Path) -> None:
    src = write_input(tmp_path / "in.jsonl", 3, special={1: "fault:400"})
    out = tmp_path / "o.jsonl"
    assert batch(own_failing, str(src), "-o", str(out)) == 1
    assert sorted(line["status"] for line in lines(out)) == ["error", "ok", "ok"]


@pytest.fixture
def own_failing() -> object:
    with EmbeddedServer() as srv:
        yield srv


def test_usage_limit_exits_75_and_says_when(own_failing: EmbeddedServer, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    own_failing.httpd.responder = UsageLimit()
    src = write_input(tmp_path / "in.jsonl", 4, special={0: "limit"})
    assert batch(own_failing, str(src), "-o", str(tmp_path / "o.jsonl"), "-c", "1") == 75
    captured = capsys.readouterr()
    assert "stopped: usage_limit (resets at 20" in captured.out
    assert "usage limit reached; it resets at" in captured.err
    assert "run the same batch again" in captured.err


BAD_INPUT = [
    ('{"id": 1, "request": {"model": "m"}}\n{"id": 2, "request": {"model": \n',
     "in.jsonl line 2: not valid JSON"),
    ('{"id": 1, "request": {"model": "m", "temprature": 1}}\n',
     "in.jsonl line 1: unknown request field 'temprature'"),
    ('{"id": 1, "request": {"model": "m"}}\n{"id": 1, "request": {"model": "m"}}\n',
     "in.jsonl line 2: duplicate id 1 (first on line 1)"),
    ('{"request": {"model": "m"}}\n', "in.jsonl line 1: missing \"id\""),
    ('{"id": 1, "request": {"model": "m"}, "provider": "nowhere"}\n',
     "in.jsonl line 1: unknown provider 'nowhere' (known: "),
    ('{"id": 1, "request": "hello"}\n', "in.jsonl line 1: \"request\" must be an object"),
    ('[1, 2]\n', "in.jsonl line 1: expected a JSON object"),
]


@pytest.mark.parametrize(("content", "message"), BAD_INPUT)
def test_bad_input_is_refused_before_anything_is_sent(
        server: EmbeddedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        content: str, message: str) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(content)
    out = tmp_path / "out.jsonl"
    before = model_calls(server.requests)
    assert batch(server, str(src), "-o", str(out)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert model_calls(server.requests) == before
    assert not out.exists()


def test_an_output_file_that_is_not_ours_is_left_alone(
        server: EmbeddedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_input(tmp_path / "in.jsonl", 3)
    out = tmp_path / "notes.jsonl"
    out.write_text('{"id": 1, "status": "ok"}\n{"name": "precious data"}\n')
    before = model_calls(server.requests)
    assert batch(server, str(src), "-o", str(out)) == 2
    err = capsys.readouterr().err
    assert "notes.jsonl line 2 is not a codexapi batch result" in err
    assert out.read_text() == '{"id": 1, "status": "ok"}\n{"name": "precious data"}\n'
    assert model_calls(server.requests) == before


def test_unreachable_scheduler(server: EmbeddedServer, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setattr(dask_engine, "CONNECT_TIMEOUT", 1.0)
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    src = write_input(tmp_path / "in.jsonl", 2)
    before = model_calls(server.requests)
    assert batch(server, str(src), "-o", str(tmp_path / "o.jsonl"), "--engine", "dask",
                 "--scheduler", f"tcp://127.0.0.1:{port}") == 2
    err = capsys.readouterr().err
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err
    assert err.count("\n") == 1 and model_calls(server.requests) == before


def test_settings_refused(server: EmbeddedServer, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    src = write_input(tmp_path / "in.jsonl", 1)
    out = str(tmp_path / "o.jsonl")
    assert batch(server, str(src), "-o", out, "--engine", "dask") == 2
    assert "--engine dask needs --scheduler" in capsys.readouterr().err
    assert batch(server, str(src), "-o", out, "--scheduler", "tcp://x:1") == 2
    assert "--scheduler is for --engine dask" in capsys.readouterr().err
    assert batch(server, str(src), "-o", out, "-c", "0") == 2
    assert "--concurrency must be at least 1" in capsys.readouterr().err
    assert batch(server, str(tmp_path / "missing.jsonl"), "-o", out) == 2
    assert "cannot read" in capsys.readouterr().err


def _env() -> dict[str, str]:
    root = str(ROOT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "CODEXAPI_"))}
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_sigkill_loses_no_finished_result_and_a_rerun_completes(tmp_path: Path) -> None:
    # Every call stalls 20 ms after its first event, so calls are in flight when it dies.
    with EmbeddedServer(faults="stall:0.02@1") as srv:
        src = write_input(tmp_path / "in.jsonl", 300)
        out = tmp_path / "out.jsonl"
        cmd = [sys.executable, "-m", "codexapi", "batch", str(src), "-o", str(out),
               "--base-url", srv.base_url, "--no-plugins", "--progress", "none", "-c", "6"]
        proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (
                    not out.exists() or out.read_bytes().count(b"\n") < 40):
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL
        before = out.read_bytes()
        assert before.endswith(b"\n"), "a torn line"
        first = lines(out)
        assert 40 <= len(first) < 300 and all(line["status"] == "ok" for line in first)
        assert len(set(ids(out))) == len(first)
        calls = model_calls(srv.requests)
        assert calls >= len(first)

        done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert out.read_bytes().startswith(before)  # nothing finished was lost or rewritten
        assert sorted(ids(out)) == sorted(f"q{i}" for i in range(300))
        # The rerun sent only what had not finished (at most the calls in flight, again).
        assert model_calls(srv.requests) - calls == 300 - len(first)


def test_a_terminal_gets_a_progress_bar(server: EmbeddedServer, tmp_path: Path) -> None:
    import fcntl
    import pty
    import struct
    import termios

    src = write_input(tmp_path / "in.jsonl", 5)
    master, slave = pty.openpty()
    # A terminal 100 columns wide (a new pty says 0, and a 0-wide bar draws nothing).
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "codexapi", "batch", str(src), "-o", str(tmp_path / "o"),
             "--base-url", server.base_url, "--no-plugins"],
            env=_env(), stdout=subprocess.PIPE, stderr=slave, timeout=60)
        os.close(slave)
        shown = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
    assert proc.returncode == 0
    text = shown.decode("utf-8", "replace")
    # tqdm's bar: description, count, rate (redrawn with carriage returns).
    assert "batch: 100%" in text and "5/5" in text and "req/s" in text and "\r" in text
    assert "5 ok, 0 failed" in proc.stdout.decode()


def test_no_server_configured_is_refused_unless_offline(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_input(tmp_path / "in.jsonl", 3)
    out = tmp_path / "out.jsonl"
    assert cli.main(["batch", str(src), "-o", str(out), "--no-plugins",
                     "--progress", "none"]) == 2
    err = capsys.readouterr().err
    assert "no server to send the batch to" in err and "--offline" in err
    assert err.count("\n") == 1 and not out.exists()
    assert cli.main(["batch", str(src), "-o", str(out), "--no-plugins", "--progress", "none",
                     "--offline"]) == 0
    assert {line["base_url"] for line in lines(out)} == {"offline"}
    assert cli.main(["batch", str(src), "-o", str(out), "--offline", "--base-url",
                     "http://127.0.0.1:9/v1"]) == 2
    assert "--offline answers from the embedded scripted model: it does not go with " \
        "--base-url" in capsys.readouterr().err


def test_a_resume_against_a_real_server_sends_what_the_offline_model_answered(
        server: EmbeddedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_input(tmp_path / "in.jsonl", 3)
    out = tmp_path / "out.jsonl"
    assert cli.main(["batch", str(src), "-o", str(out), "--offline", "--no-plugins",
                     "--progress", "none"]) == 0
    capsys.readouterr()
    before = model_calls(server.requests)
    assert batch(server, str(src), "-o", str(out)) == 0
    captured = capsys.readouterr()
    assert "3 result(s) in" in captured.err and "came from another server" in captured.err
    assert "3 ok, 0 failed, 0 left" in captured.out
    assert model_calls(server.requests) == before + 3
    assert {line["base_url"] for line in lines(out)} == {server.base_url}


def test_results_to_standard_output(server: EmbeddedServer, tmp_path: Path) -> None:
    src = write_input(tmp_path / "in.jsonl", 3)
    proc = subprocess.run(
        [sys.executable, "-m", "codexapi", "batch", str(src), "-o", "-", "--base-url",
         server.base_url, "--no-plugins", "--progress", "none", "--json"],
        env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert sorted(r["id"] for r in results) == ["q0", "q1", "q2"]
    assert json.loads(proc.stderr.strip().splitlines()[-1])["ok"] == 3


def _limited_memory() -> None:
    import resource

    # Today's output check must fail fast, not by exhausting the (shared) machine's memory.
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("target", ["/dev/full", "/dev/zero"])
def test_a_device_as_output_is_refused_at_once(server: EmbeddedServer, tmp_path: Path,
                                               target: str) -> None:
    src = write_input(tmp_path / "in.jsonl", 3)
    before = model_calls(server.requests)
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "codexapi", "batch", str(src), "-o", target, "--base-url",
         server.base_url, "--no-plugins", "--progress", "none"],
        env=_env(), capture_output=True, text=True, timeout=60, preexec_fn=_limited_memory)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr == (f"codexapi: error: BatchInputError: output {target} is not a "
                           "regular file (a device, FIFO or directory): give a file path, or - "
                           "for standard output\n")
    assert time.monotonic() - started < 20 and model_calls(server.requests) == before


def test_a_second_run_on_a_held_output_exits_2_at_once_and_sigkill_lets_go(
        tmp_path: Path) -> None:
    with EmbeddedServer(faults="stall:0.05@1") as srv:
        src = write_input(tmp_path / "in.jsonl", 300)
        out = tmp_path / "out.jsonl"
        cmd = [sys.executable, "-m", "codexapi", "batch", str(src), "-o", str(out),
               "--base-url", srv.base_url, "--no-plugins", "--progress", "none", "-c", "4"]
        first = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (
                    not out.exists() or out.read_bytes().count(b"\n") < 5):
                assert first.poll() is None, first.stderr.read() if first.stderr else ""
                time.sleep(0.01)
            started = time.monotonic()
            second = subprocess.run(cmd, env=_env(), capture_output=True, text=True,
                                    timeout=60)
            took = time.monotonic() - started
            assert first.poll() is None, "the first run ended before the second was tried"
            os.kill(first.pid, signal.SIGKILL)
        finally:
            first.wait(timeout=10)
        assert second.returncode == 2
        assert second.stderr == (f"codexapi: error: BatchInputError: output {out} is in use "
                                 "by another codexapi batch run: wait for it to end, or "
                                 "choose another output file\n")
        # At once: the time to start Python and import, not a wait on the first run.
        assert took < 10, took
        # The kernel released the lock of the killed run: a third run finishes the batch.
        third = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
        assert third.returncode == 0, third.stderr
        assert sorted(ids(out)) == sorted(f"q{i}" for i in range(300))
