"""The codexapi pytest plugin (entry point ``pytest11``: ``codexapi``).

    @pytest.mark.cassette(ignore_fields=["prompt_cache_key"])
    def test_turn(codexapi_cassette):
        ...   # HTTP made here is replayed from cassettes/test_turn.yaml next to this file

``--codexapi-record-mode`` (none, once, new_episodes, all) decides whether anything is recorded;
the default ``none`` replays only and refuses any network connection, so CI never touches the
network. The cassette machinery (and with it codexapi's client, vcrpy and PyYAML) is imported
only when a test uses a cassette: a pytest run that uses none pays nothing for the plugin.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .modes import RECORD_MODES

if TYPE_CHECKING:
    from .cassette import CassetteHandle

_SUMMARY = pytest.StashKey[list[str]]()
_USED = pytest.StashKey["list[CassetteHandle]"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("codexapi", "codexapi cassettes")
    group.addoption("--codexapi-record-mode", choices=RECORD_MODES, default=None,
                    help="cassette record mode: none (default: replay only, network refused), "
                         "once, new_episodes, all")
    parser.addini("codexapi_record_mode", "default cassette record mode", default="none")
    parser.addini("codexapi_cassette_dir",
                  "cassette directory, relative to each test file (default: cassettes)",
                  default="cassettes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "cassette(name=None, *, ignore_fields=(), scrub_headers=(), match_on=None, "
        "allow_playback_repeats=False): record/replay this test's HTTP with codexapi's "
        "cassettes (name: file under the cassette directory, may use {param} placeholders; "
        "default <test name>.yaml)")
    config.stash[_SUMMARY] = []
    config.stash[_USED] = []


def record_mode(config: pytest.Config) -> str:
    mode = config.getoption("--codexapi-record-mode", default=None) or config.getini(
        "codexapi_record_mode") or "none"
    if mode not in RECORD_MODES:
        raise pytest.UsageError(f"codexapi_record_mode = {mode!r}: use one of "
                                f"{', '.join(RECORD_MODES)}")
    return str(mode)


def cassette_name(node_name: str) -> str:
    """``test_turn[chat]`` -> ``test_turn-chat.yaml``: safe in shells and on every OS."""
    return re.sub(r"[^\w.-]+", "-", node_name).strip("-") + ".yaml"


def cassette_path(request: pytest.FixtureRequest, name: str | None = None) -> Path:
    directory = Path(request.node.path).parent / str(request.config.getini(
        "codexapi_cassette_dir") or "cassettes")
    return directory / (name or cassette_name(request.node.name))


def add_summary_line(config: pytest.Config, line: str) -> None:
    """Print ``line`` in the terminal summary at the end of the session."""
    config.stash[_SUMMARY].append(line)


@pytest.fixture
def codexapi_record_mode(request: pytest.FixtureRequest) -> str:
    """The active record mode (``none`` unless asked otherwise)."""
    return record_mode(request.config)


@pytest.fixture
def codexapi_cassette(request: pytest.FixtureRequest) -> Iterator[CassetteHandle]:
    """Record/replay the test's HTTP traffic; options come from the ``cassette`` marker."""
    marker = request.node.get_closest_marker("cassette")
    args: tuple[Any, ...] = marker.args if marker else ()
    kwargs: dict[str, Any] = dict(marker.kwargs) if marker else {}
    name = kwargs.pop("name", args[0] if args else None)
    callspec = getattr(request.node, "callspec", None)
    if name and callspec is not None:
        # One marker for a parametrized test: "{wire}_text.yaml" names a cassette per param.
        name = str(name).format(**{k: v for k, v in callspec.params.items()})
    path = cassette_path(request, name)
    options = {k: v for k, v in kwargs.items() if v is not None}
    from .cassette import use_cassette

    with use_cassette(path, record_mode(request.config), **options) as handle:
        request.config.stash[_USED].append(handle)
        yield handle


@pytest.fixture(autouse=True)
def _codexapi_cassette_marker(request: pytest.FixtureRequest) -> None:
    # The marker alone is enough: a marked test gets the cassette without naming the fixture.
    if request.node.get_closest_marker("cassette") is not None:
        request.getfixturevalue("codexapi_cassette")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config
                            ) -> None:
    used: list[CassetteHandle] = config.stash.get(_USED, [])
    summary: list[str] = config.stash.get(_SUMMARY, [])
    lines = list(summary)
    if used:
        played = sum(h.play_count for h in used)
        lines.insert(0, f"{len(used)} cassette uses, {played} interactions replayed "
                        f"(record mode {record_mode(config)})")
    if lines:
        terminalreporter.write_sep("-", "codexapi cassettes")
        for line in lines:
            terminalreporter.write_line(line)
