"""A batch does not lie about what it did: each result line says which server answered it and a
resume against another server runs it again; the offline scripted model answers only when
asked; the output is a regular file (or standard output), read under a line bound, and held by
one run at a time."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from support.batch_helpers import ids, lines, model_calls

from codexapi import Provider, batch
from codexapi.batch import output as output_module
from codexapi.errors import ConfigError
from codexapi.server import EmbeddedServer

ITEMS = [{"id": f"q{n}", "request": {"model": "gpt-5", "input": f"question {n}"}}
         for n in range(4)]


def run(requests: object, server: EmbeddedServer | None, **kw: object) -> batch.BatchRun:
    kw.setdefault("load_entrypoints", False)
    provider = None if server is None else Provider(base_url=server.base_url)
    return batch.run(requests, provider, **kw)  # type: ignore[arg-type]


@pytest.fixture
def other() -> object:
    with EmbeddedServer() as srv:
        yield srv


def test_a_resume_against_another_server_runs_those_lines_again(
        server: EmbeddedServer, other: EmbeddedServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert len(list(run(ITEMS, server, output=out))) == 4
    assert {line["base_url"] for line in lines(out)} == {server.base_url}
    again = run(ITEMS, other, output=out)
    assert sorted(r.id for r in again) == [f"q{n}" for n in range(4)]
    assert (again.summary.skipped, again.summary.other_server) == (0, 4)
    assert model_calls(other.requests) == 4
    # One line per id is kept, the newest: the file now says where its results came from.
    assert sorted(ids(out)) == [f"q{n}" for n in range(4)]
    assert {line["base_url"] for line in lines(out)} == {other.base_url}
    assert list(run(ITEMS, other, output=out)) == [] and model_calls(other.requests) == 4


def test_the_offline_model_answers_only_when_asked(server: EmbeddedServer, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out.jsonl"
    offline = {r.id: r for r in run(ITEMS, None, output=out, offline=True)}
    assert offline["q1"].text == "You said: question 1"
    assert {line["base_url"] for line in lines(out)} == {batch.OFFLINE}
    # The offline answers are not done for a real server: it gets every request.
    before = model_calls(server.requests)
    resumed = run(ITEMS, server, output=out)
    assert len(list(resumed)) == 4 and resumed.summary.other_server == 4
    assert model_calls(server.requests) == before + 4
    with pytest.raises(ConfigError, match="give no provider"):
        run(ITEMS, server, offline=True)
    # Without offline=True and without a provider, the environment's server is used.
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    assert {r.base_url for r in run(ITEMS, None)} == {server.base_url}


@pytest.mark.parametrize("kind", ["/dev/null", "fifo", "directory"])
def test_the_output_must_be_a_regular_file(server: EmbeddedServer, tmp_path: Path,
                                           kind: str) -> None:
    if kind == "fifo":
        target = tmp_path / "pipe"
        os.mkfifo(target)
    elif kind == "directory":
        target = tmp_path
    else:
        target = Path(kind)
    before = model_calls(server.requests)
    started = time.monotonic()
    with pytest.raises(batch.BatchInputError, match="is not a regular file"):
        run(ITEMS, server, output=target)
    assert time.monotonic() - started < 2
    assert model_calls(server.requests) == before


def test_standard_output_takes_the_results_and_resumes_nothing(
        server: EmbeddedServer, capfd: pytest.CaptureFixture[str]) -> None:
    for _ in range(2):
        assert len(list(run(ITEMS, server, output="-"))) == 4
    written = [line for line in capfd.readouterr().out.splitlines() if line]
    assert len(written) == 8 and all('"status":"ok"' in line for line in written)


def test_lines_are_read_under_a_bound(server: EmbeddedServer, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(output_module, "MAX_LINE", 1000)
    out = tmp_path / "out.jsonl"
    out.write_text('{"id": "q0", "status": "ok", "text": "' + "x" * 2000 + '"}\n')
    with pytest.raises(batch.BatchInputError, match="line 1 is not a codexapi batch result "
                       r"\(longer than 1000 bytes\)"):
        run(ITEMS, server, output=out)
    with pytest.raises(batch.BatchInputError, match="longer than 1000 bytes"):
        list(batch.read_results(out))


def test_an_output_held_by_another_run_is_refused_until_it_ends(
        server: EmbeddedServer, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    first = run(ITEMS, server, output=out)  # holds the file from now on
    before = model_calls(server.requests)
    with pytest.raises(batch.BatchInputError, match="is in use by another codexapi batch run"):
        run(ITEMS, server, output=out)
    assert model_calls(server.requests) == before
    first.close()  # never iterated: closing it still lets the file go
    assert len(list(run(ITEMS, server, output=out))) == 4


def test_a_refused_run_leaves_no_empty_output_behind(tmp_path: Path) -> None:
    out = tmp_path / "new.jsonl"
    bad = [{"id": 1, "request": {"model": "m"}, "provider": "nowhere"}]
    with pytest.raises(batch.BatchInputError, match="unknown provider"):
        batch.run(bad, Provider(base_url="http://127.0.0.1:9/v1"), output=out, providers={},
                  load_entrypoints=False)
    assert not out.exists()
