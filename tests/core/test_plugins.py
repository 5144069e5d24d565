"""Third-party plugins: real distributions (a ``*.dist-info`` with ``entry_points.txt`` on a
sys.path entry, found by importlib.metadata exactly as an installed wheel is), the
CODEXAPI_PLUGINS switch, load failures, hook answers of the wrong type, and
``codexapi plugins``."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REQ, make_client

import codexapi
from codexapi import (
    Client,
    PluginError,
    Provider,
    RetryPolicy,
    UnsupportedEndpointError,
    hookimpl,
)
from codexapi import plugins as plugin_loader
from codexapi.cli.commands import main
from codexapi.server import EmbeddedServer, Exchange, route
from codexapi.server.responses import post_responses

AUTH_PLUGIN = """
import codexapi
from codexapi import hookimpl

@hookimpl
def codexapi_auth(provider):
    return codexapi.BearerAuth("{token}")
"""


class Site:
    """A directory on sys.path holding modules and the dist-info of 'installed' distributions."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.modules: list[str] = []

    def install(self, dist: str, entry_points: dict[str, str], modules: dict[str, str],
                version: str = "1.0") -> None:
        info = self.root / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n", encoding="utf-8")
        lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
        (info / "entry_points.txt").write_text(f"[codexapi]\n{lines}", encoding="utf-8")
        for module, source in modules.items():
            (self.root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
            self.modules.append(module)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))  # also invalidates importlib's caches
    plugin_loader.reset_cache()
    s = Site(root)
    yield s
    plugin_loader.reset_cache()
    for module in s.modules:
        sys.modules.pop(module, None)


@pytest.fixture(scope="module")
def srv() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as server:
        yield server


def last_authorization(server: EmbeddedServer) -> str | None:
    headers = {k.lower(): v for k, v in server.requests[-1][2].items()}
    return headers.get("authorization")


def install_acme(site: Site, token: str = "acme-token") -> None:
    site.install("acme-codexapi", {"acme": "acme_codexapi_auth"},
                 {"acme_codexapi_auth": AUTH_PLUGIN.format(token=token)})


# --- loading from the entry-point group --------------------------------------------------------


def test_installed_plugin_provides_auth_over_the_builtin_env_key(
        site: Site, srv: EmbeddedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    install_acme(site)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with make_client(srv, load_entrypoints=True) as client:
        client.stream(REQ).collect()
        info = {p["name"]: p for p in plugin_loader.describe(client.plugin_manager)}
    assert last_authorization(srv) == "Bearer acme-token"
    assert info["acme"] == {"name": "acme", "hooks": ["codexapi_auth"], "builtin": False,
                            "origin": "entrypoint", "distribution": "acme-codexapi"}


def test_load_entrypoints_false_is_hermetic(site: Site, srv: EmbeddedServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    install_acme(site)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with make_client(srv) as client:
        client.stream(REQ).collect()
        assert not client.plugin_manager.has_plugin("acme")
    assert last_authorization(srv) == "Bearer sk-from-env"
    assert "acme_codexapi_auth" not in sys.modules  # not even imported


@pytest.mark.parametrize(("selector", "loaded"), [
    (None, True), ("", False), ("acme", True), ("acme-codexapi", True), (" other , acme ", True),
    ("other", False)])
def test_codexapi_plugins_env_var_selects_entry_points(
        site: Site, monkeypatch: pytest.MonkeyPatch, selector: str | None, loaded: bool) -> None:
    install_acme(site)
    if selector is not None:
        monkeypatch.setenv("CODEXAPI_PLUGINS", selector)
    pm = plugin_loader.make_plugin_manager()
    assert pm.has_plugin("acme") is loaded
    missing = [f for f in pm.load_failures if f.name == "other"]
    assert bool(missing) is ("other" in (selector or ""))
    if missing:
        assert "no installed distribution" in missing[0].error


def test_entry_point_objects_and_duplicate_names(site: Site) -> None:
    # An entry point may name an object inside a module; two distributions may pick the
    # same entry-point name and both still load.
    site.install("first-dist", {"auth": "first_plug:Plugin"}, {"first_plug": """
        from codexapi import hookimpl
        class Plugin:
            @hookimpl
            def codexapi_retry_delay(provider, attempt, error):
                return None
        """})
    site.install("second-dist", {"auth": "second_plug"}, {"second_plug": """
        from codexapi import hookimpl
        @hookimpl
        def codexapi_on_request(provider, request, attempt):
            pass
        """})
    info = {p["name"]: p for p in plugin_loader.describe(plugin_loader.make_plugin_manager())}
    names = {n for n, p in info.items() if p["origin"] == "entrypoint"}
    assert len(names) == 2 and "auth" in names
    assert {info[n]["distribution"] for n in names} == {"first-dist", "second-dist"}


def test_plugin_that_fails_to_import_is_reported_not_fatal(
        site: Site, srv: EmbeddedServer, caplog: pytest.LogCaptureFixture) -> None:
    install_acme(site)
    site.install("broken-dist", {"broken": "broken_codexapi_plugin"},
                 {"broken_codexapi_plugin": "import no_such_dependency_xyz\n"})
    with caplog.at_level(logging.WARNING, logger="codexapi"), \
            make_client(srv, load_entrypoints=True) as client:
        assert client.stream(REQ).collect().text == "You said: Hello"
        failures = client.plugin_manager.load_failures
    assert last_authorization(srv) == "Bearer acme-token"  # the healthy plugin still loaded
    assert [(f.name, f.dist) for f in failures] == [("broken", "broken-dist")]
    assert "ModuleNotFoundError" in failures[0].error
    assert "no_such_dependency_xyz" in failures[0].error
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'broken'" in m and "broken-dist" in m for m in warning)
    # Reported once per process, not once per Client.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="codexapi"):
        Client(Provider(base_url=srv.base_url)).close()
    assert not caplog.records


def test_plugin_with_a_misspelt_hook_is_a_plugin_error_naming_it(
        site: Site, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    site.install("typo-dist", {"typo": "typo_codexapi_plugin"}, {"typo_codexapi_plugin": """
        from codexapi import hookimpl
        @hookimpl
        def codexapi_auht(provider):
            return None
        """})
    with pytest.raises(PluginError) as info:
        plugin_loader.make_plugin_manager()
    message = str(info.value)
    assert "'typo'" in message and "typo-dist" in message and "codexapi_auht" in message
    assert "CODEXAPI_PLUGINS" in message  # how to get going again without it
    assert info.value.plugin == "typo"
    assert main(["plugins"]) == 2  # the command says so in one line instead of a traceback
    assert "PluginError: plugin 'typo'" in capsys.readouterr().err
    assert main(["plugins", "--no-plugins"]) == 0
    # The documented way out works.
    monkeypatch.setenv("CODEXAPI_PLUGINS", "")
    assert not plugin_loader.make_plugin_manager().has_plugin("typo")


def test_hook_with_a_wrong_signature_is_a_plugin_error() -> None:
    class Wrong:
        @hookimpl
        def codexapi_auth(self, provider: Any, vault: Any) -> Any:
            return None

    with pytest.raises(PluginError, match=r"(?s)Wrong\(\)' could not be registered.*vault"):
        plugin_loader.make_plugin_manager([Wrong()], load_entrypoints=False)


def test_plugins_given_by_module_name(srv: EmbeddedServer, site: Site) -> None:
    site.install("unused", {}, {"named_plugin_mod": AUTH_PLUGIN.format(token="by-name")})
    with make_client(srv, plugins=["named_plugin_mod"]) as client:
        client.stream(REQ).collect()
    assert last_authorization(srv) == "Bearer by-name"
    with pytest.raises(PluginError, match="'no_such_plugin_module' could not be imported"):
        plugin_loader.make_plugin_manager(["no_such_plugin_module"], load_entrypoints=False)


# --- hooks answering with the wrong type ---------------------------------------------------------


class ListBody:
    @hookimpl
    def codexapi_build_body(self, provider: Any, endpoint: str, request: Any) -> Any:
        return [("model", "m")]


class IntPath:
    @hookimpl
    def codexapi_endpoint_path(self, provider: Any, endpoint: str) -> Any:
        return 42


@pytest.mark.parametrize(("plugin", "hook", "got", "expected"), [
    (ListBody(), "codexapi_build_body", "list", "dict"),
    (IntPath(), "codexapi_endpoint_path", "int", "str"),
])
def test_hook_returning_the_wrong_type_names_the_plugin(
        srv: EmbeddedServer, plugin: Any, hook: str, got: str, expected: str) -> None:
    srv.requests.clear()
    name = f"{type(plugin).__name__}()"
    with make_client(srv, plugins=[plugin]) as client, \
            pytest.raises(PluginError) as info:
        client.stream(REQ).collect()
    assert f"{name}' returned {got} from {hook}, expected {expected}" in str(info.value)
    assert info.value.plugin is not None and info.value.plugin.endswith(name)


def test_retry_delay_of_the_wrong_type_names_the_plugin(srv: EmbeddedServer) -> None:
    class StrDelay:
        @hookimpl
        def codexapi_retry_delay(self, provider: Any, attempt: int, error: Any) -> Any:
            return "1.5"

    provider = Provider(base_url="http://127.0.0.1:9/v1", retry=RetryPolicy(max_attempts=2),
                        connect_timeout=2.0)
    with Client(provider, plugins=[StrDelay()], load_entrypoints=False) as client, \
            pytest.raises(PluginError, match=r"StrDelay\(\)' returned str from codexapi_retry"):
        client.stream(REQ)


_flaky_calls: list[int] = []


@route("POST", "/flaky-once/responses")
def _flaky_once(ex: Exchange) -> None:
    _flaky_calls.append(1)
    if len(_flaky_calls) % 2:
        ex.send_error(500, "try again", "server_error")
    else:
        post_responses(ex)


def test_observers_see_every_attempt_retry_and_response(srv: EmbeddedServer) -> None:
    seen: list[tuple[Any, ...]] = []

    class Recorder:
        @hookimpl
        def codexapi_on_request(self, provider: Any, request: Any, attempt: int) -> None:
            seen.append(("request", attempt, request.method, request.url))

        @hookimpl
        def codexapi_on_response(self, provider: Any, request: Any, response: Any,
                                 attempt: int, elapsed: float) -> None:
            assert 0 <= elapsed < 10
            seen.append(("response", attempt, response.status))

        @hookimpl
        def codexapi_on_retry(self, provider: Any, request: Any, attempt: int, error: Any,
                              delay: float) -> None:
            seen.append(("retry", attempt, getattr(error, "status", None), delay))

    _flaky_calls.clear()
    provider = Provider(base_url=f"{srv.base_url}/flaky-once", stream_idle_timeout=10.0,
                        retry=RetryPolicy(max_attempts=3, base_delay=0.0))
    with Client(provider, plugins=[Recorder()], load_entrypoints=False,
                sleep=lambda _: None) as client:
        assert client.stream(REQ).collect().text == "You said: Hello"
    url = f"{srv.base_url}/flaky-once/responses"
    assert seen == [("request", 1, "POST", url), ("response", 1, 500), ("retry", 1, 500, 0.0),
                    ("request", 2, "POST", url), ("response", 2, 200)]


def test_failing_observer_is_logged_naming_it_and_the_turn_goes_on(
        srv: EmbeddedServer, caplog: pytest.LogCaptureFixture) -> None:
    class Telemetry:
        @hookimpl
        def codexapi_on_response(self, provider: Any, request: Any, response: Any,
                                 attempt: int, elapsed: float) -> None:
            raise ValueError("collector down")

    with caplog.at_level(logging.WARNING, logger="codexapi"), \
            make_client(srv, plugins=[Telemetry()]) as client:
        assert client.stream(REQ).collect().text == "You said: Hello"
    assert any("Telemetry()' raised ValueError in codexapi_on_response (ignored): "
               "collector down" in r.getMessage() for r in caplog.records)


def test_no_plugin_for_the_endpoint_is_unsupported(srv: EmbeddedServer) -> None:
    class Nothing:
        @hookimpl(tryfirst=True)
        def codexapi_endpoint_path(self, provider: Any, endpoint: str) -> Any:
            raise UnsupportedEndpointError(f"{endpoint} is not offered by this gateway")

    with make_client(srv, plugins=[Nothing()]) as client, \
            pytest.raises(UnsupportedEndpointError, match="not offered by this gateway"):
        client.stream(REQ)


# --- codexapi plugins ------------------------------------------------------------------------


def test_plugins_command_text_and_json(site: Site, capsys: pytest.CaptureFixture[str]) -> None:
    install_acme(site)
    site.install("broken-dist", {"broken": "broken_codexapi_plugin2"},
                 {"broken_codexapi_plugin2": "raise RuntimeError('needs a licence file')\n"})
    assert main(["plugins"]) == 0
    text = capsys.readouterr().out
    assert "codexapi_plugins.auth (built-in): codexapi_auth" in text
    assert "acme (entry point from acme-codexapi): codexapi_auth" in text
    assert "FAILED broken (from broken-dist): RuntimeError: needs a licence file" in text

    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    by_name = {p["name"]: p for p in data["plugins"]}
    # A retry is logged by the call itself, not by the logging plugin.
    assert by_name["codexapi_plugins.logs"]["hooks"] == [
        "codexapi_on_request", "codexapi_on_response"]
    assert by_name["acme"]["distribution"] == "acme-codexapi"
    assert data["failures"] == [{"name": "broken", "distribution": "broken-dist",
                                 "error": "RuntimeError: needs a licence file"}]

    assert main(["plugins", "--json", "--no-plugins"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert all(p["builtin"] for p in data["plugins"]) and data["failures"] == []


def test_plugins_command_in_a_fresh_process(site: Site) -> None:
    # A separate interpreter finds the distribution through its own sys.path, as after a
    # `pip install`: nothing of this test process's state is involved.
    install_acme(site)
    env = {**os.environ, "PYTHONPATH": str(site.root)}
    env.pop("CODEXAPI_PLUGINS", None)
    run = subprocess.run([sys.executable, "-m", "codexapi", "plugins", "--json"], env=env,
                         capture_output=True, text=True, timeout=30, check=True)
    names = [p["name"] for p in json.loads(run.stdout)["plugins"]]
    assert "acme" in names
    env["CODEXAPI_PLUGINS"] = ""
    run = subprocess.run([sys.executable, "-m", "codexapi", "plugins"], env=env,
                         capture_output=True, text=True, timeout=30, check=True)
    assert "acme" not in run.stdout and "codexapi_plugins.auth" in run.stdout


def test_hookimpl_is_the_public_marker() -> None:
    assert codexapi.hookimpl is codexapi.hookspecs.hookimpl
