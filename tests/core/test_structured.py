"""Structured output: JSON schemas from attrs classes, ``text.format`` on the wire, and the
model's JSON back as values (``output_json()``, ``parsed(cls)``) or a typed error."""

from __future__ import annotations

import enum
import json
import re
from typing import Any, Literal

import attrs
import pytest
from conftest import make_client

from codexapi import (
    Client,
    ConfigError,
    FunctionCall,
    OutputParseError,
    ResponsesRequest,
    StreamResult,
    TextControls,
    WireApi,
    json_schema,
)
from codexapi.schema import text_format
from codexapi.server import EmbeddedServer
from codexapi_plugins.wire_chat import build_body


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


@attrs.frozen
class Reading:
    place: str
    degrees: float
    unit: Unit


@attrs.frozen
class Forecast:
    """Tomorrow's weather."""

    city: str = attrs.field(metadata={"description": "The city asked about"})
    days: int = 1
    rain: bool | None = None
    readings: list[Reading] = attrs.field(factory=list)
    tone: Literal["plain", "cheerful"] = "plain"


def test_schema_of_an_attrs_class_is_strict() -> None:
    schema = json_schema(Forecast)
    assert schema == {
        "type": "object",
        "description": "Tomorrow's weather.",
        "properties": {
            "city": {"type": "string", "description": "The city asked about"},
            "days": {"type": "integer"},
            "rain": {"anyOf": [{"type": "boolean"}, {"type": "null"}]},
            "readings": {"type": "array", "items": {"$ref": "#/$defs/Reading"}},
            "tone": {"enum": ["plain", "cheerful"]},
        },
        "required": ["city", "days", "rain", "readings", "tone"],
        "additionalProperties": False,
        "$defs": {"Reading": {
            "type": "object",
            "properties": {"place": {"type": "string"}, "degrees": {"type": "number"},
                           "unit": {"enum": ["celsius", "fahrenheit"]}},
            "required": ["place", "degrees", "unit"], "additionalProperties": False}},
    }
    # Not strict: fields with defaults may be left out.
    assert json_schema(Forecast, strict=False)["required"] == ["city"]


def test_text_format_and_text_controls() -> None:
    fmt = text_format(Forecast)
    assert fmt["type"] == "json_schema" and fmt["name"] == "Forecast" and fmt["strict"] is True
    controls = TextControls.for_class(Forecast, verbosity="LOW")
    assert controls.format == fmt and controls.verbosity == "low"
    assert text_format(Forecast, name="weather")["name"] == "weather"


@attrs.frozen
class Tags:
    counts: dict[str, int]


@attrs.frozen
class Odd:
    when: complex


def test_types_without_a_schema_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"Tags.counts: strict structured output"):
        json_schema(Tags)
    assert json_schema(Tags, strict=False)["properties"]["counts"] == {
        "type": "object", "additionalProperties": {"type": "integer"}}
    with pytest.raises(ConfigError, match=r"Odd.when: no JSON schema for type"):
        json_schema(Odd)
    with pytest.raises(ConfigError, match="needs an attrs class"):
        json_schema(dict)


def test_structured_output_round_trip(client: Client, server: EmbeddedServer) -> None:
    req = ResponsesRequest(model="m", input="Lyon", text=TextControls.for_class(Forecast))
    result = client.create(req)
    sent = server.requests[-1][3]
    assert sent["text"]["format"]["schema"] == json_schema(Forecast)
    # The scripted model puts its echo in every string of a value that fits the schema.
    echo = "You said: Lyon"
    assert result.output_json() == {
        "city": echo, "days": 1, "rain": True, "tone": "plain",
        "readings": [{"place": echo, "degrees": 1.0, "unit": "celsius"}]}
    assert result.parsed(Forecast) == Forecast(
        city=echo, days=1, rain=True, tone="plain", readings=[Reading(echo, 1.0, Unit.C)])


def result_with(text: str) -> StreamResult:
    return StreamResult(text=text, items=[], response_id="resp_1", usage=None)


@pytest.mark.parametrize(("text", "detail"), [
    ("", "empty, not JSON"),
    ("Sure! Here you go: {", "not valid JSON"),
])
def test_output_that_is_not_json_is_a_typed_error(text: str, detail: str) -> None:
    with pytest.raises(OutputParseError, match=detail) as info:
        result_with(text).output_json()
    assert info.value.text == text and isinstance(info.value, ValueError)


@pytest.mark.parametrize(("data", "detail"), [
    ('{"days": 2}', "city"),
    ('{"city": "Lyon", "readings": [{"place": "x", "degrees": 1, "unit": "kelvin"}]}',
     "kelvin"),
    ("[1, 2]", "not a valid Forecast"),
])
def test_json_that_does_not_fit_the_class_is_a_typed_error(data: str, detail: str) -> None:
    with pytest.raises(OutputParseError, match="not a valid Forecast") as info:
        result_with(data).parsed(Forecast)
    assert detail in str(info.value)


def test_parsed_takes_any_type_the_converter_knows() -> None:
    value: Any = result_with('[{"place": "a", "degrees": 2.5, "unit": "fahrenheit"}]').parsed(
        list[Reading])
    assert value == [Reading("a", 2.5, Unit.F)]


@attrs.frozen
class Flags:
    verbose: bool
    count: int
    ratio: float
    label: str


GOOD_FLAGS = {"verbose": False, "count": 2, "ratio": 0.5, "label": "a"}


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("verbose", "false", "bool"),  # cattrs' default gave bool("false"), i.e. True
    ("verbose", 0, "bool"),
    ("count", 3.9, "int"),  # ... int(3.9), i.e. 3
    ("count", True, "int"),
    ("count", "12", "int"),
    ("ratio", "0.5", "float"),
    ("ratio", False, "float"),
    ("label", 5, "str"),  # ... str(5)
    ("label", None, "str"),
])
def test_json_scalars_structure_only_from_their_own_json_type(field: str, value: Any,
                                                              expected: str) -> None:
    text = json.dumps({**GOOD_FLAGS, field: value})
    with pytest.raises(OutputParseError) as info:
        result_with(text).parsed(Flags)
    assert f"expected {expected} @ $.{field}" in info.value.detail
    # A whole number is a number: a float field takes it, as a float.
    ratio = result_with(json.dumps({**GOOD_FLAGS, "ratio": 2})).parsed(Flags).ratio
    assert ratio == 2.0 and type(ratio) is float
    with pytest.raises(OutputParseError, match="expected an integer, got str '3'"):
        result_with('"3"').parsed(int)


@attrs.frozen
class Shelf:
    titles: list[str]
    sizes: tuple[int, ...] = ()
    tags: frozenset[str] = frozenset()
    counts: dict[str, int] = attrs.field(factory=dict)


@pytest.mark.parametrize(("data", "where"), [
    ({"titles": "ab"}, "$.titles"),  # cattrs' default gave ['a', 'b']
    ({"titles": {"a": 1}}, "$.titles"),  # ... ['a']
    ({"titles": [], "sizes": "12"}, "$.sizes"),  # ... (1, 2)
    ({"titles": [], "tags": "ab"}, "$.tags"),
    ({"titles": [], "counts": [["a", 1]]}, "$.counts"),  # ... {'a': 1}
])
def test_collections_structure_only_from_json_arrays_and_objects(data: dict[str, Any],
                                                                 where: str) -> None:
    with pytest.raises(OutputParseError, match=re.escape(where)):
        result_with(json.dumps(data)).parsed(Shelf)
    good = {"titles": ["x"], "sizes": [1, 2], "tags": ["a", "a"], "counts": {"k": 1}}
    assert result_with(json.dumps(good)).parsed(Shelf) == Shelf(["x"], (1, 2), frozenset("a"),
                                                                 {"k": 1})
    for text, cls in [('"ab"', list[str]), ('[["a", 1]]', dict[str, int])]:
        with pytest.raises(OutputParseError, match=r"expected an (array|object)"):
            result_with(text).parsed(cls)


@attrs.frozen
class Account:
    _owner: str
    balance: int = attrs.field(alias="amount")
    _note: str | None = None


def test_the_schema_names_the_keys_parsed_reads() -> None:
    # Private and aliased fields: the schema asks for their __init__ names, and parsed(cls)
    # reads those same keys (cattrs' default read "_owner", so the model's "owner" was lost).
    props = json_schema(Account)["properties"]
    assert list(props) == ["owner", "amount", "note"]
    value = {"owner": "ana", "amount": 3, "note": "x"}
    assert result_with(json.dumps(value)).parsed(Account) == Account("ana", 3, "x")
    with pytest.raises(OutputParseError, match="required field missing"):
        result_with(json.dumps({"_owner": "ana", "amount": 3})).parsed(Account)


def refs_alone(node: Any) -> bool:
    """Whether every ``$ref`` in a schema stands alone (strict mode refuses one with company)."""
    if isinstance(node, dict):
        if "$ref" in node and len(node) > 1:
            return False
        return all(refs_alone(v) for v in node.values())
    return all(refs_alone(v) for v in node) if isinstance(node, list) else True


def other_module_reading() -> type:
    @attrs.frozen
    class Reading:  # the same name as the module's Reading, other fields
        station: int

    return Reading


OtherReading = other_module_reading()


@attrs.frozen
class Report:
    first: Reading = attrs.field(metadata={"description": "The first reading"})
    other: OtherReading = attrs.field(metadata={"description": "Elsewhere"})  # type: ignore[valid-type]
    rest: list[Reading] = attrs.field(factory=list, metadata={"description": "The others"})


def test_described_class_fields_and_same_named_classes() -> None:
    schema = json_schema(Report)
    assert refs_alone(schema)
    props = schema["properties"]
    # A described field of a class type carries the class's schema itself, not a $ref.
    assert props["first"] == {**schema["$defs"]["Reading"], "description": "The first reading"}
    assert list(props["other"]["properties"]) == ["station"]
    assert props["rest"] == {"type": "array", "items": {"$ref": "#/$defs/Reading"},
                             "description": "The others"}
    # Two classes called Reading: each its own definition.
    assert len(schema["$defs"]) == 2
    assert [list(d["properties"]) for d in schema["$defs"].values()] == [
        ["place", "degrees", "unit"], ["station"]]


def test_structured_output_on_the_chat_wire(server: EmbeddedServer) -> None:
    req = ResponsesRequest(model="m", input="Lyon", text=TextControls.for_class(Forecast))
    with make_client(server, WireApi.CHAT) as client:
        result = client.create(req)
    # Chat nests the Responses format under json_schema (it was dropped: free text came back).
    assert server.requests[-1][3]["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "Forecast", "strict": True, "schema": json_schema(Forecast)}}
    assert result.parsed(Forecast).city == "You said: Lyon"


@pytest.mark.parametrize(("text", "expected"), [
    (TextControls(verbosity="low"), None),
    ({"format": {"type": "text"}}, None),
    ({"format": {"type": "json_object"}}, {"type": "json_object"}),
    ({"format": {"type": "json_schema", "schema": {"type": "object"}}},
     {"type": "json_schema", "json_schema": {"name": "output", "schema": {"type": "object"}}}),
])
def test_chat_response_format(text: Any, expected: dict[str, Any] | None) -> None:
    body = build_body(ResponsesRequest(model="m", input="x", text=text))
    assert body.get("response_format") == expected


def local_classes() -> type:
    @attrs.frozen
    class Inside:
        x: int

    @attrs.frozen
    class Outside:
        inside: Inside

    return Outside


class Plain:
    """Not an attrs class."""


@pytest.mark.parametrize(("cls", "message"), [
    (local_classes(), "name 'Inside' is not defined"),
    (Plain, "Unsupported type"),
])
def test_a_class_no_output_can_fit_is_a_config_error(cls: type, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        result_with('{"inside": {"x": 1}}').parsed(cls)
    with pytest.raises(ConfigError, match=message):
        FunctionCall(name="f", arguments='{"inside": {"x": 1}}', call_id="c").parsed_arguments(cls)


# --- refusals -----------------------------------------------------------------------------------


def _sse(events: list[dict[str, Any]], chat: bool = False) -> list[bytes]:
    body = "".join(f"data: {json.dumps(e)}\n\n" for e in events)
    return [(body + ("data: [DONE]\n\n" if chat else "")).encode()]


REFUSAL = "I can't help with that."


def _refusing_turn(wire: WireApi) -> StreamResult:
    from codexapi import Provider
    from codexapi.testing import MockResponse, MockTransport

    if wire == WireApi.CHAT:
        chunks = [{"id": "c1", "choices": [{"delta": {"role": "assistant", "content": None,
                                                      "refusal": ""}}]},
                  {"id": "c1", "choices": [{"delta": {"refusal": REFUSAL[:8]}}]},
                  {"id": "c1", "choices": [{"delta": {"refusal": REFUSAL[8:]}}]},
                  {"id": "c1", "choices": [{"delta": {}, "finish_reason": "stop"}]}]
        body = _sse(chunks, chat=True)
    else:
        message = {"type": "message", "role": "assistant", "id": "m1",
                   "content": [{"type": "refusal", "refusal": REFUSAL}]}
        body = _sse([{"type": "response.created", "response": {"id": "r1"}},
                     {"type": "response.output_item.done", "item": message},
                     {"type": "response.completed", "response": {"id": "r1"}}])
    transport = MockTransport(lambda request: MockResponse(
        200, body, {"content-type": "text/event-stream"}))
    provider = Provider(base_url="http://127.0.0.1:9/v1", wire=wire)
    with Client(provider, transport=transport, load_entrypoints=False) as client:
        return client.create(ResponsesRequest(
            model="m", input="Forecast", text=TextControls.for_class(Forecast)))


@pytest.mark.parametrize("wire", [WireApi.RESPONSES, WireApi.CHAT])
def test_a_refusal_is_an_error_that_says_what_the_model_said(wire: WireApi) -> None:
    result = _refusing_turn(wire)
    assert result.text == "" and result.refusal == REFUSAL
    for parse in (result.output_json, lambda: result.parsed(Forecast)):
        with pytest.raises(OutputParseError, match="refused to answer") as info:
            parse()
        assert info.value.refusal == REFUSAL and info.value.detail == "refused"
        assert REFUSAL in str(info.value)


def test_output_without_a_refusal_says_so() -> None:
    result = StreamResult("not json", [], None, None)
    assert result.refusal is None
    with pytest.raises(OutputParseError) as info:
        result.output_json()
    assert info.value.refusal is None and "refused" not in str(info.value)
