"""docs/testing.md runs as written: its test files are recorded and replayed by pytest with the
doc's own command lines, and its Python snippets are executed."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from conftest import ROOT, SHARED

from codexapi.cli.commands import build_parser
from codexapi.server import EmbeddedServer
from codexapi.testing import NoMatchingInteractionError, serve_cassette, use_cassette

pytest_plugins = ["pytester"]

DOC = (ROOT / "docs" / "testing.md").read_text(encoding="utf-8")
PYTHON = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)
SHELL = [line for block in re.findall(r"```sh\n(.*?)```", DOC, flags=re.DOTALL)
         for line in block.splitlines() if line.strip()]
FILES = {m.group(1): b for b in PYTHON if (m := re.match(r"# (\w+\.py)\n", b))}
SNIPPETS = [b for b in PYTHON if not re.match(r"# \w+\.py\n", b)]


def snippet(text: str) -> str:
    return next(b for b in SNIPPETS if text in b)


def pytest_lines(test_file: str) -> list[list[str]]:
    """The doc's `pytest ...` command lines for ``test_file``, as argument lists."""
    return [shlex.split(line)[1:] for line in SHELL
            if line.startswith("pytest ") and line.endswith(test_file)]


@pytest.fixture
def recorded(pytester: pytest.Pytester, server: EmbeddedServer,
             monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    """The doc's test files, recorded with the doc's first command line."""
    for name, source in FILES.items():
        pytester.makepyfile(**{name[:-3]: source})
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    for name in FILES:
        record = pytest_lines("test_greeting.py")[0]
        assert record == ["--codexapi-record-mode=once", "test_greeting.py"]
        result = pytester.runpytest_inprocess("-p", "no:cacheprovider", record[0], name)
        result.assert_outcomes(passed=1)
    monkeypatch.delenv("OPENAI_BASE_URL")
    return pytester


def test_doc_test_files_record_then_replay_without_a_server(
        recorded: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    assert sorted(FILES) == ["test_greeting.py", "test_turn_usage.py"]
    cassettes = recorded.path / "cassettes"
    assert sorted(p.name for p in cassettes.iterdir()) == ["test_greeting.yaml",
                                                          "test_turn_usage.yaml"]
    monkeypatch.setenv("CACHE_KEY", "run-2")  # a volatile field the marker ignores
    replay = pytest_lines("test_greeting.py")[1]
    assert replay == ["test_greeting.py"]
    result = recorded.runpytest_inprocess("-p", "no:cacheprovider", *replay,
                                          "test_turn_usage.py")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["2 cassette uses, 2 interactions replayed (record mode none)"])


def test_miss_message_has_the_documented_shape(recorded: pytest.Pytester) -> None:
    from codexapi import Client, Provider, ResponsesRequest

    with use_cassette(recorded.path / "cassettes" / "test_greeting.yaml",
                      ignore_fields=["prompt_cache_key"]), Client(
            Provider(base_url="http://127.0.0.1:8000/v1"), load_entrypoints=False) as client, \
            pytest.raises(NoMatchingInteractionError) as info:
        client.stream(ResponsesRequest(model="gpt-5", input="Hello!"))
    lines = str(info.value).splitlines()
    documented = re.search(r"```text\n(.*?)```", DOC, flags=re.DOTALL)
    assert documented is not None
    expected = documented.group(1).splitlines()
    assert lines[0].split(" has no interaction for ")[1].startswith(
        expected[0].split(" has no interaction for ")[1].split(" with body ")[0])
    assert lines[1] == expected[1] == "closest recorded requests:"
    assert lines[3].strip() == expected[3].strip()
    assert lines[4] == expected[4]


def test_use_cassette_snippet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(snippet("use_cassette(\"session.yaml\""), "docs/testing.md", "exec"), {})
    assert (tmp_path / "session.yaml").read_text().count("- request:") == 1


@pytest.mark.shared("real-cassettes")
def test_load_interactions_snippet(capsys: pytest.CaptureFixture[str]) -> None:
    path = SHARED / "real-cassettes" / "llmrb-llm" / "text_streaming.yaml"
    exec(compile(snippet("load_interactions(path)"), "docs/testing.md", "exec"), {"path": path})
    out = capsys.readouterr().out.splitlines()
    assert out[0] == ("POST https://api.openai.com/v1/responses 200 text/event-stream")
    assert out[1].strip() == "337 events"


def test_serve_snippet_with_openai_python(recorded: pytest.Pytester,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    [command] = [shlex.split(line) for line in SHELL if line.startswith("codexapi serve")]
    args = build_parser().parse_args(command[1:])
    assert (args.cassette, args.port) == ("cassettes/test_greeting.yaml", 8001)
    with serve_cassette(recorded.path / args.cassette) as server:
        code = snippet("openai.OpenAI(").replace("http://127.0.0.1:8001/v1", server.base_url)
        exec(compile(code, "docs/testing.md", "exec"), {})
    assert capsys.readouterr().out.strip() == "You said: Hello there"


def test_rerecord_command_names_the_project_module() -> None:
    [line] = [line for line in SHELL if "tests/testing/test_cassettes_project.py" in line]
    assert line.endswith("--codexapi-record-mode=all")
    assert (ROOT / "tests" / "testing" / "test_cassettes_project.py").is_file()
