"""The Wire seam: a wire registered by a plugin is a wire like the built-ins. The NDJSON wire
below lives entirely in this test (its own path, body, framing and decoder): adding a wire
touches only its plugin module."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import make_client, make_request
from support.recording_transport import RecordingTransport

import codexapi
from codexapi import (
    Client,
    Completed,
    ConfigError,
    Event,
    OutputTextDelta,
    PluginError,
    Provider,
    StreamError,
    UnsupportedEndpointError,
    WireApi,
    hookimpl,
)
from codexapi.cli.commands import main
from codexapi.http.transport import BufferedResponse, HttpRequest
from codexapi.plugins import collect_wires, describe_wires, make_plugin_manager
from codexapi.server import EmbeddedServer, Exchange, route
from codexapi.wires import WireContext

REQ = make_request(instructions="Be brief.")


# --- a complete third-party wire: newline-delimited JSON ------------------------------------


class NdjsonDecoder:
    """One JSON object per line: {"text": ...} deltas, then {"done": true, "id": ...}."""

    def __init__(self) -> None:
        self.done = False
        self._tail = b""

    def feed_data(self, data: bytes) -> list[Event]:
        lines = (self._tail + data).split(b"\n")
        self._tail = lines.pop()
        out: list[Event] = []
        for line in lines:
            if line.strip() and not self.done:
                obj = json.loads(line)
                if obj.get("done"):
                    self.done = True
                    out.append(Completed(obj["id"], None))
                else:
                    out.append(OutputTextDelta(obj["text"]))
        return out

    def close(self) -> list[Event]:
        if not self.done:
            raise StreamError("ndjson stream ended before its done line")
        return []


class NdjsonWire:
    name = "ndjson"

    def path(self, endpoint: str) -> str:
        if endpoint != "stream":
            raise UnsupportedEndpointError(f"ndjson has no {endpoint} endpoint")
        return "ndjson/generate"

    def body(self, endpoint: str, request: Any) -> dict[str, Any]:
        prompt = " ".join(i.content for i in request.input)
        return {"model": request.model, "system": request.instructions, "prompt": prompt}

    def decoder(self, endpoint: str) -> NdjsonDecoder:
        return NdjsonDecoder()


class NdjsonPlugin:
    @hookimpl
    def codexapi_register_wires(self, register: Callable[[Any], None]) -> None:
        register(NdjsonWire())


@route("POST", "/ndjson/generate")
def _ndjson(ex: Exchange) -> None:
    words = ex.body["prompt"].split()
    lines = b"".join(json.dumps({"text": w + " "}).encode() + b"\n" for w in words)
    lines += b'{"done": true, "id": "nd_1"}\n'
    ex.start_stream(content_type="application/x-ndjson")
    for i in range(0, len(lines), 7):  # split anywhere: the wire's decoder owns the framing
        ex.write(lines[i:i + 7])
    ex.end_stream()


@pytest.fixture(scope="module")
def srv() -> Iterator[EmbeddedServer]:
    with EmbeddedServer() as server:
        yield server


def test_a_wire_from_a_plugin_streams_end_to_end(srv: EmbeddedServer) -> None:
    srv.requests.clear()
    with make_client(srv, "ndjson", plugins=[NdjsonPlugin()]) as client:
        result = client.stream(REQ).collect()
    assert result.text == "Hello "
    assert result.response_id == "nd_1"
    method, path, _, body = srv.requests[-1]
    assert (method, path) == ("POST", "/ndjson/generate")
    assert body == {"model": "m", "system": "Be brief.", "prompt": "Hello"}


def test_wrappers_edit_a_plugin_wires_body_too(srv: EmbeddedServer) -> None:
    class Louder:
        @hookimpl(wrapper=True)
        def codexapi_build_body(self, wire: Any) -> Any:
            body = yield
            if wire.name == "ndjson":
                body["prompt"] = body["prompt"].upper() + " again"
            return body

    with Client(Provider(base_url=srv.base_url, wire="ndjson"),
                plugins=[NdjsonPlugin(), Louder()], load_entrypoints=False) as client:
        assert client.stream(REQ).collect().text == "HELLO again "


def test_unknown_wire_is_a_config_error_listing_the_registered_ones() -> None:
    with pytest.raises(ConfigError) as info:
        Client(Provider(name="x", wire="grpc"), load_entrypoints=False)
    message = str(info.value)
    assert "provider 'x' uses wire 'grpc'" in message
    assert "registered wires: 'chat', 'responses'" in message
    with pytest.raises(ConfigError, match="'chat', 'ndjson', 'responses'"):
        Client(Provider(wire="grpc"), plugins=[NdjsonPlugin()], load_entrypoints=False)


def test_wires_and_where_they_come_from() -> None:
    pm = make_plugin_manager([NdjsonPlugin()], load_entrypoints=False)
    wires = {w["name"]: w for w in describe_wires(pm)}
    assert wires["responses"]["plugin"] == "codexapi_plugins.wire_responses"
    assert wires["chat"]["origin"] == "builtin"
    assert wires["ndjson"]["origin"] == "caller"
    assert wires["ndjson"]["class"].endswith("NdjsonWire")
    assert set(collect_wires(pm)) == {"responses", "chat", "responses_websocket", "ndjson"}
    assert WireApi.RESPONSES in collect_wires(pm)  # the enum members are the names


def test_plugins_command_lists_the_wires(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "--no-plugins"]) == 0
    out = capsys.readouterr().out
    assert "wire 'responses' from codexapi_plugins.wire_responses" in out
    assert "wire 'chat' from codexapi_plugins.wire_chat" in out
    assert main(["plugins", "--no-plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [w["name"] for w in data["wires"]] == ["chat", "responses", "responses_websocket"]


def test_a_plugin_wire_replaces_a_builtin_of_the_same_name(srv: EmbeddedServer) -> None:
    class MyResponses(NdjsonWire):
        name = "responses"

    class Replace:
        @hookimpl
        def codexapi_register_wires(self, register: Callable[[Any], None]) -> None:
            register(MyResponses())

    with Client(Provider(base_url=srv.base_url), plugins=[Replace()],
                load_entrypoints=False) as client:
        assert client.stream(REQ).collect().response_id == "nd_1"
    registry = collect_wires(make_plugin_manager([Replace()], load_entrypoints=False))
    assert registry.source("responses").endswith("Replace()")
    assert [e.plugin for e in registry.shadowed] == ["codexapi_plugins.wire_responses"]


def test_registering_something_that_is_not_a_wire_names_the_plugin() -> None:
    class Sloppy:
        @hookimpl
        def codexapi_register_wires(self, register: Callable[[Any], None]) -> None:
            register(object())

    with pytest.raises(PluginError, match=r"Sloppy\(\)' raised TypeError in "
                                          r"codexapi_register_wires: a wire needs"):
        Client(Provider(), plugins=[Sloppy()], load_entrypoints=False)


def test_a_wire_decoder_of_the_wrong_kind_is_a_plugin_error(srv: EmbeddedServer) -> None:
    class Bad(NdjsonWire):
        def decoder(self, endpoint: str) -> Any:
            return "decoder"

    class Plugin:
        @hookimpl
        def codexapi_register_wires(self, register: Callable[[Any], None]) -> None:
            register(Bad())

    with Client(Provider(base_url=srv.base_url, wire="ndjson"), plugins=[Plugin()],
                load_entrypoints=False) as client, \
            pytest.raises(PluginError, match=r"wire 'ndjson' .* returned str from decoder"):
        client.stream(REQ)


# --- a wire that opens its own byte stream (the WebSocket seam) --------------------------------


def test_a_wire_with_open_bypasses_the_http_transport() -> None:
    opened: list[tuple[str, HttpRequest, WireContext]] = []

    class Framed(NdjsonWire):
        name = "framed"

        def open(self, endpoint: str, request: HttpRequest, context: WireContext) -> Any:
            opened.append((endpoint, request, context))
            context.connections.setdefault(self.name, Conn())
            body = json.loads(request.body or b"{}")
            lines = f'{{"text": "{body["prompt"]}"}}\n{{"done": true, "id": "f1"}}\n'
            return BufferedResponse(200, {"x-frames": "1"}, lines.encode(), request.url)

    class Conn:
        closed = False

        def close(self) -> None:
            Conn.closed = True

    class Plugin:
        @hookimpl
        def codexapi_register_wires(self, register: Callable[[Any], None]) -> None:
            register(Framed())

    transport = RecordingTransport()
    provider = Provider(base_url="https://ws.example/v1", wire="framed", stream_idle_timeout=9.0)
    client = Client(provider, auth=codexapi.BearerAuth("sk-ws"), plugins=[Plugin()],
                    load_entrypoints=False, transport=transport)
    with client:
        assert client.stream(REQ).collect().text == "Hello"
    assert transport.requests == []  # the wire opened the stream itself
    [(endpoint, request, context)] = opened
    assert endpoint == "stream" and request.url == "https://ws.example/v1/ndjson/generate"
    assert request.headers["Authorization"] == "Bearer sk-ws"
    assert request.timeout == (30.0, 9.0, 9.0)  # (connect, head, idle)
    assert context.provider is provider and context.transport is transport
    assert Conn.closed  # kept connections close with the Client


def test_a_decoder_is_built_with_the_settings_it_must_honour(srv: EmbeddedServer) -> None:
    from codexapi.decoding import DecoderSettings

    built: list[DecoderSettings] = []

    class Settled(NdjsonWire):
        def decoder(self, endpoint: str, settings: DecoderSettings) -> NdjsonDecoder:
            built.append(settings)
            return NdjsonDecoder()

    class Plugin:
        @hookimpl
        def codexapi_register_wires(self, register: Callable[[Any], None]) -> None:
            register(Settled())

    with make_client(srv, "ndjson", plugins=[Plugin()], max_message_bytes=4096,
                     skip_undecodable_events=True) as client:
        client.stream(make_request("a b")).collect()
    (settings,) = built
    assert (settings.max_message_bytes, settings.skip_undecodable) == (4096, True)
    assert settings.headers["content-type"] == "application/x-ndjson"  # the head's headers


def test_a_wire_of_an_earlier_version_still_gets_its_message_bound(srv: EmbeddedServer) -> None:
    bounds: list[int] = []

    class Bounded(NdjsonDecoder):
        def bound_messages(self, max_message: int) -> None:
            bounds.append(max_message)

    class Earlier(NdjsonWire):
        def decoder(self, endpoint: str) -> NdjsonDecoder:  # no settings: an earlier version
            return Bounded()

    class Plugin:
        @hookimpl
        def codexapi_register_wires(self, register: Callable[[Any], None]) -> None:
            register(Earlier())

    with make_client(srv, "ndjson", plugins=[Plugin()], max_message_bytes=4096) as client:
        assert client.stream(make_request("a b")).collect().text == "a b "
    assert bounds == [4096]
