"""The pytest plugin end to end, in a pytest run of its own: the marker records next to the
test file with --codexapi-record-mode=once and replays by default with no server at all."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

TEST_FILE = """
import os
import pytest
from codexapi import Client, Provider, ResponsesRequest, RetryPolicy

def client():
    base = os.environ.get("REC_BASE_URL", "http://127.0.0.1:9/v1")
    return Client(Provider(base_url=base, retry=RetryPolicy(max_attempts=1)),
                  load_entrypoints=False)

@pytest.mark.cassette(ignore_fields=["prompt_cache_key"])
@pytest.mark.parametrize("word", ["one", "two"])
def test_marker(word, codexapi_record_mode):
    req = ResponsesRequest(model="m", input=word, prompt_cache_key=os.environ.get("KEY", "a"))
    assert client().stream(req).collect().text == "You said: " + word

def test_fixture(codexapi_cassette):
    req = ResponsesRequest(model="m", input="fixture")
    assert client().stream(req).collect().text == "You said: fixture"
    assert codexapi_cassette.path.name == "test_fixture.yaml"
"""


def test_marker_and_fixture_record_then_replay(pytester: pytest.Pytester, server: object,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_rec=TEST_FILE)
    monkeypatch.setenv("REC_BASE_URL", server.base_url)  # type: ignore[attr-defined]
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider",
                                          "--codexapi-record-mode=once")
    result.assert_outcomes(passed=3)
    cassettes = pytester.path / "cassettes"
    assert sorted(p.name for p in cassettes.iterdir()) == [
        "test_fixture.yaml", "test_marker-one.yaml", "test_marker-two.yaml"]

    # Default mode (none): replayed, no server, a different volatile field ignored.
    monkeypatch.delenv("REC_BASE_URL")
    monkeypatch.setenv("KEY", "b")
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*codexapi cassettes*", "3 cassette uses, 3 interactions "
                                 "replayed (record mode none)"])

    # A request the cassette lacks fails the test with the typed error naming it.
    pytester.makepyfile(test_rec=TEST_FILE.replace('input="fixture"', 'input="other"'))
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "fixture")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*NoMatchingInteractionError*no interaction for POST "
                                 "http://127.0.0.1:9/v1/responses with body*"])


def test_record_mode_option_is_validated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_x="def test_x(): pass")
    result = pytester.runpytest_inprocess("--codexapi-record-mode=sometimes")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*invalid choice: 'sometimes'*"])


def test_ini_sets_directory_and_default_mode(pytester: pytest.Pytester, server: object,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makeini("[pytest]\ncodexapi_cassette_dir = recordings\n"
                     "codexapi_record_mode = once\n")
    pytester.makepyfile(test_rec=TEST_FILE)
    monkeypatch.setenv("REC_BASE_URL", server.base_url)  # type: ignore[attr-defined]
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-k", "fixture")
    result.assert_outcomes(passed=1)
    assert (pytester.path / "recordings" / "test_fixture.yaml").is_file()
    assert not (pytester.path / "cassettes").exists()


def test_the_plugin_imports_nothing_until_a_cassette_is_used() -> None:
    # Installing codexapi registers the plugin in every pytest run of the environment: a run
    # that uses no cassette must not pay for the client, the server, vcrpy or PyYAML.
    import subprocess
    import sys

    code = ("import sys, pytest, codexapi\n"
            "before = set(sys.modules)\n"
            "import codexapi.testing.pytest_plugin\n"
            "print(sorted(set(sys.modules) - before))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True).stdout
    assert out.strip() == str(["codexapi.testing", "codexapi.testing.modes",
                               "codexapi.testing.pytest_plugin"])
