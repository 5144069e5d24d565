"""docs/embedding.md runs as written: its Flask app module is saved and imported, and every other
Python block is executed in order (the threaded-server block asserts its own answers)."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

DOC = (ROOT / "docs" / "embedding.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```python\n(.*?)```", DOC, flags=re.DOTALL)
MODULES = {m.group(1): b for b in BLOCKS if (m := re.match(r"# (\w+)\.py\n", b))}
SNIPPETS = [b for b in BLOCKS if not re.match(r"# \w+\.py\n", b)]


@pytest.fixture
def saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, source in MODULES.items():
        (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    logger = logging.getLogger("codexapi")
    state = (list(logger.handlers), logger.level)
    yield
    logger.handlers[:], logger.level = state
    for name in MODULES:
        sys.modules.pop(name, None)


def run(index: int) -> None:
    exec(compile(SNIPPETS[index], f"docs/embedding.md[python {index}]", "exec"), {})


def find(text: str) -> int:
    return next(i for i, b in enumerate(SNIPPETS) if text in b)


def test_the_doc_has_the_flask_app_and_its_examples() -> None:
    assert "app" in MODULES and "Flask(__name__)" in MODULES["app"]
    assert len(SNIPPETS) == 6


def test_flask_test_client(saved: None, capsys: pytest.CaptureFixture[str]) -> None:
    run(find("test_client()"))
    assert "'text': 'You said: Hello'" in capsys.readouterr().out


def test_threaded_server_shares_one_client(saved: None,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    run(find("threaded=True"))  # asserts the eight concurrent answers itself
    assert capsys.readouterr().out.strip() == "You said: question 99"


def test_upstream_errors_become_json(saved: None) -> None:
    import socket

    from app import create_app  # type: ignore[import-not-found]

    from codexapi import Provider, RetryPolicy

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(Provider(base_url=f"http://127.0.0.1:{port}/v1",
                              retry=RetryPolicy(max_attempts=1)))
    reply = app.test_client().post("/ask", json={"prompt": "Hello"})
    assert reply.status_code == 504
    assert reply.get_json()["kind"] == "TransportError"
    app.extensions["codexapi"].close()


def test_timeouts(saved: None, capsys: pytest.CaptureFixture[str]) -> None:
    run(find("stream_idle_timeout=120.0"))
    assert capsys.readouterr().out.splitlines()[:2] == ["You said: Hello"] * 2


def test_proxies(saved: None, capsys: pytest.CaptureFixture[str]) -> None:
    run(find("ProxySettings.from_env"))
    out = capsys.readouterr().out.splitlines()
    assert out == ["Proxy('http://proxy.corp:3128' from HTTPS_PROXY)", "None", "None"]
    assert "secret" not in "".join(out)


def test_tls(saved: None, capsys: pytest.CaptureFixture[str]) -> None:
    run(find("ca_bundle="))
    assert "/nonexistent/corp.pem, which does not exist" in capsys.readouterr().out


def test_logging(saved: None, capsys: pytest.CaptureFixture[str]) -> None:
    run(find("dictConfig"))
    err = capsys.readouterr().err
    assert re.search(r"INFO codexapi <- POST http://127\.0\.0\.1:\d+/v1/responses status=200",
                     err), err
