"""Every hook is called through pluggy: wrappers (new and old style), tryfirst/trylast and
hook-call monitoring work on all of them; built-ins lose to any plugin; failures name their
plugin; a failing observer is logged and does not abort the call."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import pytest
from conftest import REQ, make_client
from support.recording_transport import RESPONSES_DONE, RecordingTransport

import codexapi
from codexapi import Client, PluginError, Provider, ResponsesRequest, RetryPolicy, hookimpl
from codexapi.plugins import make_plugin_manager


def client(*plugins: Any, transport: RecordingTransport | None = None) -> Client:
    """A client with ``plugins`` whose turns a scripted transport answers (by default with one
    completed response)."""
    return make_client(auth=codexapi.NoAuth(), plugins=plugins,
                       transport=transport or RecordingTransport(RESPONSES_DONE))


def test_new_style_wrapper_edits_the_wires_body() -> None:
    class Tagging:
        @hookimpl(wrapper=True)
        def codexapi_build_body(self, endpoint: str) -> Generator[None, Any, Any]:
            body = yield
            body["metadata"] = {"tagged": endpoint}
            return body

    transport = RecordingTransport(RESPONSES_DONE)
    with client(Tagging(), transport=transport) as c:
        c.stream(REQ).collect()
    body = transport.body()
    assert body["metadata"] == {"tagged": "stream"}
    assert body["model"] == "m" and body["stream"] is True  # the wire's body, edited


def test_old_style_hookwrapper_sees_the_outcome_of_an_observer_call() -> None:
    outcomes: list[Any] = []

    class Old:
        @hookimpl(hookwrapper=True)
        def codexapi_on_request(self, request: Any, attempt: int) -> Generator[None, Any, None]:
            outcome = yield
            outcomes.append((attempt, request.method, outcome.get_result()))

    with client(Old()) as c:
        c.stream(REQ).collect()
    assert outcomes == [(1, "POST", [])]


def test_hookcall_monitoring_sees_every_hook_of_a_turn() -> None:
    calls: list[str] = []
    with client() as c:
        undo = c.plugin_manager.add_hookcall_monitoring(
            lambda name, impls, kwargs: calls.append(name), lambda *a: None)
        try:
            c.stream(REQ).collect()
        finally:
            undo()
    # The built-in OpenTelemetry plugin observes stream ends: it is asked about the turn first.
    assert calls[:5] == ["codexapi_observe_stream", "codexapi_build_body",
                         "codexapi_endpoint_path", "codexapi_on_request", "codexapi_on_response"]


def test_monitoring_sees_client_setup_hooks_too() -> None:
    pm = make_plugin_manager(load_entrypoints=False)
    calls: list[str] = []
    pm.add_hookcall_monitoring(lambda name, impls, kwargs: calls.append(name),
                               lambda *a: None)
    from codexapi.plugins import collect_wires

    assert set(collect_wires(pm)) == {"responses", "chat", "responses_websocket"}
    assert pm.call("codexapi_auth", provider=Provider()) is not None
    assert calls == ["codexapi_register_wires", "codexapi_auth"]


# --- ordering ----------------------------------------------------------------------------------


def _delay_plugin(value: float, **opts: Any) -> Any:
    class Delay:
        @hookimpl(**opts)
        def codexapi_retry_delay(self) -> float:
            return value

    return Delay()


@pytest.mark.parametrize(("opts", "expected"), [
    ({}, 7.0), ({"trylast": True}, 7.0), ({"tryfirst": True}, 7.0)])
def test_any_plugin_beats_the_builtin_whatever_its_priority(opts: dict[str, bool],
                                                            expected: float) -> None:
    pm = make_plugin_manager([_delay_plugin(7.0, **opts)], load_entrypoints=False)
    error = codexapi.TransportError("reset")
    assert pm.call("codexapi_retry_delay", provider=Provider(), attempt=1,
                   error=error) == expected
    # Without the plugin the built-in answers (codex backoff around 0.2 s).
    bare = make_plugin_manager(load_entrypoints=False)
    assert 0.1 < bare.call("codexapi_retry_delay", provider=Provider(), attempt=1,
                           error=error) < 0.3


def test_among_plugins_pluggy_order_holds() -> None:
    early, late = _delay_plugin(1.0), _delay_plugin(2.0)
    pm = make_plugin_manager([early, late], load_entrypoints=False)
    kw: dict[str, Any] = {"provider": Provider(), "attempt": 1,
                          "error": codexapi.TransportError("x")}
    assert pm.call("codexapi_retry_delay", **kw) == 2.0  # later registered, asked first
    first = _delay_plugin(3.0, tryfirst=True)
    pm = make_plugin_manager([first, early, late], load_entrypoints=False)
    assert pm.call("codexapi_retry_delay", **kw) == 3.0
    last = _delay_plugin(4.0, trylast=True)
    pm = make_plugin_manager([early, last], load_entrypoints=False)
    assert pm.call("codexapi_retry_delay", **kw) == 1.0


def test_builtins_are_registered_trylast() -> None:
    pm = make_plugin_manager(load_entrypoints=False)
    impls = pm.hook.codexapi_auth.get_hookimpls()
    assert [i.plugin_name for i in impls] == ["codexapi_plugins.auth"]
    assert impls[0].trylast


# --- failures ----------------------------------------------------------------------------------


def test_hook_that_raises_is_a_plugin_error_naming_it() -> None:
    class Broken:
        @hookimpl
        def codexapi_build_body(self) -> Any:
            raise KeyError("model")

    with client(Broken()) as c, pytest.raises(PluginError) as info:
        c.stream(REQ)
    assert "Broken()' raised KeyError in codexapi_build_body" in str(info.value)
    assert info.value.plugin is not None and info.value.plugin.endswith("Broken()")
    assert isinstance(info.value.__cause__, KeyError)


def test_wrapper_that_raises_is_a_plugin_error_naming_the_wrapper() -> None:
    class Innocent:
        @hookimpl
        def codexapi_build_body(self) -> Any:
            return None

    class BadWrapper:
        @hookimpl(wrapper=True)
        def codexapi_build_body(self) -> Generator[None, Any, Any]:
            body = yield
            return body["no-such-field"]

    with client(Innocent(), BadWrapper()) as c, pytest.raises(PluginError) as info:
        c.stream(REQ)
    assert "BadWrapper()' raised KeyError in codexapi_build_body" in str(info.value)


def test_wrapper_that_answers_the_wrong_type_is_named() -> None:
    class Listify:
        @hookimpl(wrapper=True)
        def codexapi_build_body(self) -> Generator[None, Any, Any]:
            body = yield
            return list(body)

    with client(Listify()) as c, pytest.raises(PluginError, match=r"Listify\(\)' returned "
                                                                   r"list from codexapi_build"):
        c.stream(REQ)


def test_typed_errors_from_a_hook_pass_through() -> None:
    class Refuse:
        @hookimpl
        def codexapi_build_body(self) -> Any:
            raise codexapi.InvalidRequest("no images on this gateway")

    with client(Refuse()) as c, pytest.raises(codexapi.InvalidRequest, match="no images"):
        c.stream(REQ)


def test_failing_observer_is_logged_and_the_call_goes_on(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    seen: list[int] = []

    class Telemetry:
        @hookimpl
        def codexapi_on_response(self, response: Any) -> None:
            raise ValueError("collector down")

    class Counter:
        @hookimpl(trylast=True)  # asked after Telemetry: still called
        def codexapi_on_response(self, response: Any) -> None:
            seen.append(response.status)

    with caplog.at_level(logging.WARNING, logger="codexapi"), \
            client(Counter(), Telemetry()) as c:
        assert c.stream(REQ).collect().response_id == "resp_1"
    assert seen == [200]
    [record] = [r for r in caplog.records if "collector down" in r.getMessage()]
    assert "Telemetry()' raised ValueError in codexapi_on_response" in record.getMessage()
    assert record.exc_info is not None


def test_failing_observer_wrapper_is_logged_too(caplog: pytest.LogCaptureFixture) -> None:
    class BadTracer:
        @hookimpl(wrapper=True)
        def codexapi_on_request(self) -> Generator[None, Any, Any]:
            yield
            raise RuntimeError("span exporter gone")

    with caplog.at_level(logging.WARNING, logger="codexapi"), client(BadTracer()) as c:
        assert c.stream(REQ).collect().response_id == "resp_1"
    assert any("BadTracer()' raised RuntimeError in codexapi_on_request" in r.getMessage()
               for r in caplog.records)


class CallWatcher:
    """Records the unary-call observers, as a metrics plugin would see them."""

    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    @hookimpl
    def codexapi_on_call_start(self, endpoint: str, request: Any,
                               extensions: dict[str, Any]) -> None:
        extensions["watcher"] = endpoint
        self.seen.append(("start", endpoint, request))

    @hookimpl
    def codexapi_on_request(self, request: Any) -> None:
        self.seen.append(("request", request.extensions.get("watcher")))

    @hookimpl
    def codexapi_on_call_end(self, endpoint: str, request: Any, result: Any,
                             error: BaseException | None, extensions: dict[str, Any]) -> None:
        self.seen.append(("end", endpoint, extensions["watcher"], result, error))


def test_unary_calls_are_observed_from_start_to_end() -> None:
    from codexapi.server import EmbeddedServer

    watcher = CallWatcher()
    request = ResponsesRequest(model="gpt-5", input="compact me")
    with EmbeddedServer() as server, Client(
            Provider(base_url=server.base_url, retry=RetryPolicy(max_attempts=1)),
            plugins=[watcher], load_entrypoints=False) as c:
        items = c.compact(request)
        models = c.list_models("0.171.0")
        with pytest.raises(codexapi.ApiError) as failed:
            c.compact(ResponsesRequest(model="fault:400", input="x"))
    start, sent, end = watcher.seen[:3]
    assert start == ("start", "compact", request) and sent == ("request", "compact")
    assert end == ("end", "compact", "compact", items, None)
    assert watcher.seen[3:6] == [("start", "models", "0.171.0"), ("request", "models"),
                                 ("end", "models", "models", models, None)]
    assert watcher.seen[-1][:4] == ("end", "compact", "compact", None)
    assert watcher.seen[-1][4] is failed.value
