"""docs/plugins.md runs as written: its plugin module is written to disk and imported, its
pytest example is executed against the embedded server, its packaging snippets install the
plugin as a distribution that codexapi then finds through the entry-point group."""

from __future__ import annotations

import configparser
import inspect
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from codexapi import ApiError, AuthError, Client, Provider, ResponsesRequest
from codexapi import plugins as plugin_loader
from codexapi.server import EmbeddedServer

DOC = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", DOC, flags=re.DOTALL)


def modules() -> dict[str, str]:
    """Python blocks whose first line is ``# name.py``: files a reader would save."""
    found = {}
    for block in blocks("python"):
        match = re.match(r"# (\w+)\.py\b", block)
        if match:
            found[match.group(1)] = block
    return found


def snippets() -> list[str]:
    return [b for b in blocks("python") if not re.match(r"# \w+\.py\b", b)]


@pytest.fixture
def saved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The doc's modules saved in a directory on sys.path, as a reader would."""
    root = tmp_path / "site"
    root.mkdir()
    for name, source in modules().items():
        (root / f"{name}.py").write_text(source, encoding="utf-8")
    monkeypatch.syspath_prepend(str(root))
    plugin_loader.reset_cache()
    yield root
    plugin_loader.reset_cache()
    for name in modules():
        sys.modules.pop(name, None)


def test_the_doc_has_a_complete_auth_plugin_under_40_lines() -> None:
    plugin = modules()["acme_codexapi"]
    assert len(plugin.strip().splitlines()) < 40
    assert "def codexapi_auth(provider)" in plugin and "def refresh(self)" in plugin


@pytest.mark.parametrize("index", range(len(snippets())))
def test_doc_python_examples_run(index: int, saved: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    namespace: dict[str, Any] = {"__name__": f"docs_plugins_{index}"}
    exec(compile(snippets()[index], f"docs/plugins.md[python {index}]", "exec"), namespace)
    fixtures = {"tmp_path": tmp_path, "monkeypatch": monkeypatch}
    for name, fn in namespace.items():
        if name.startswith("test_") and callable(fn):
            fn(**{p: fixtures[p] for p in inspect.signature(fn).parameters})


def test_doc_plugin_reports_vault_problems_naming_the_file(
        saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import acme_codexapi

    missing = tmp_path / "no-token-here"
    monkeypatch.setenv("ACME_TOKEN_FILE", str(missing))
    with EmbeddedServer(api_keys={"tok"}) as server, Client(
            Provider(name="acme", base_url=server.base_url), plugins=[acme_codexapi],
            load_entrypoints=False) as client:
        with pytest.raises(AuthError, match=str(missing)):
            client.stream(ResponsesRequest(model="m", input="x"))
        missing.write_text("wrong-token")
        with pytest.raises(ApiError) as info:  # refresh() saw the same token: no second try
            client.stream(ResponsesRequest(model="m", input="x"))
        assert info.value.status == 401 and server.httpd.refused == 1
        assert "wrong-token" not in repr(client)


def test_doc_packaging_snippets_install_a_plugin_that_codexapi_finds(
        saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml = tomllib.loads(next(b for b in blocks("toml") if "[project" in b))
    project = toml["project"]
    entry_points = project["entry-points"]["codexapi"]
    cfg = configparser.ConfigParser()
    cfg.read_string(blocks("ini")[0])
    from_cfg = dict(line.split(" = ") for line in
                    cfg["options.entry_points"]["codexapi"].strip().splitlines())
    assert from_cfg == entry_points  # the two packaging forms declare the same thing

    # What `pip install .` leaves behind for importlib.metadata: a dist-info directory.
    info = saved / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    (info / "entry_points.txt").write_text(
        "[codexapi]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    token = tmp_path / "token"
    token.write_text("installed-tok\n")
    monkeypatch.setenv("ACME_TOKEN_FILE", str(token))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-loses")
    with EmbeddedServer(api_keys={"installed-tok"}) as server, Client(
            Provider(name="acme", base_url=server.base_url)) as client:
        assert client.stream(ResponsesRequest(model="m", input="Hi")).collect().text
        described = {p["name"]: p for p in plugin_loader.describe(client.plugin_manager)}
    assert described["acme"]["distribution"] == "acme-codexapi"
    assert described["acme"]["hooks"] == ["codexapi_auth"]


@pytest.mark.parametrize(("marker", "expected"), [
    ("class TokenEndpoint", ["refresh asked with rt-1", "You said: hi", "saved: rt-2"]),
    ("CommandAuth(sys.executable", ["You said: hi", "CommandAuth True", "You said: again"]),
])
def test_doc_auth_examples_print_what_they_say(marker: str, expected: list[str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    [snippet] = [s for s in snippets() if marker in s]
    exec(compile(snippet, "docs/plugins.md", "exec"), {"__name__": "docs_plugins_auth"})
    assert capsys.readouterr().out.splitlines() == expected
