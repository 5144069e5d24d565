"""The cassette layer: recording scrubs and stays readable, replays match and stream the way a
live server does, and bad input fails with typed, named errors."""

from __future__ import annotations

import gzip
import json
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import SHARED, make_client, make_request

from codexapi import (
    BearerAuth,
    CodexApiError,
    OutputTextDelta,
    Provider,
    ResponsesClient,
    ResponsesRequest,
    Urllib3Transport,
)
from codexapi.http.transport import HttpRequest
from codexapi.server import EmbeddedServer
from codexapi.testing import (
    CassetteError,
    CorruptCassetteError,
    NetworkBlockedError,
    NoMatchingInteractionError,
    VcrTransport,
    load_interactions,
    serve_cassette,
    use_cassette,
)
from codexapi.testing.formats import Interaction
from codexapi.testing.storage import dump_cassette

REAL = SHARED / "real-cassettes"
DEAD = "http://127.0.0.1:9/v1"  # nothing listens there: a replay must not need a server


def request(text: str = "Hello there", **kw: Any) -> ResponsesRequest:
    return make_request(text, instructions="Be brief.", **kw)


@pytest.fixture
def recorded(tmp_path: Path, server: EmbeddedServer) -> Path:
    """A cassette recorded against the embedded server, with credentials on the request."""
    path = tmp_path / "turn.yaml"
    auth = BearerAuth("sk-live-0123456789abcdef")
    with use_cassette(path, "once"), make_client(server.base_url, auth=auth) as c:
        c.stream(request(prompt_cache_key="cache-1"), conversation_id="conv-1",
                 headers={"ChatGPT-Account-ID": "acct-42", "OpenAI-Organization": "org-7",
                          "OpenAI-Project": "proj-9", "api-key": "azure-key-123456",
                          "Cookie": "session=abc"}).collect()
    return path


def test_recording_scrubs_credentials_and_account_headers(recorded: Path) -> None:
    text = recorded.read_text()
    for secret in ("sk-live-0123456789abcdef", "acct-42", "org-7", "proj-9", "azure-key-123456",
                   "session=abc"):
        assert secret not in text
    headers = yaml.safe_load(text)["interactions"][0]["request"]["headers"]
    for name in ("Authorization", "ChatGPT-Account-ID", "OpenAI-Organization", "OpenAI-Project",
                 "api-key", "Cookie"):
        assert headers[name] == ["<redacted>"], name
    assert headers["conversation_id"] == ["conv-1"]  # not a secret: kept


def test_recording_is_readable_block_text_with_a_normalized_loopback_host(recorded: Path
                                                                          ) -> None:
    text = recorded.read_text()
    assert "!!binary" not in text
    assert "      string: |" in text  # the SSE body is a YAML block scalar...
    assert "\n        event: response.created\n        data: {" in text  # ...one line per line
    data = yaml.safe_load(text)
    assert data["interactions"][0]["request"]["uri"] == "http://127.0.0.1:8000/v1/responses"
    # Stock vcrpy's loader reads it as well.
    from vcr.serializers import yamlserializer

    assert len(yamlserializer.deserialize(text)["interactions"]) == 1


def test_replay_needs_no_server_and_ignores_the_port(recorded: Path) -> None:
    with use_cassette(recorded, ignore_fields=["prompt_cache_key"]) as cassette, make_client(
            DEAD) as c:
        result = c.stream(request(prompt_cache_key="another")).collect()
    assert result.text == "You said: Hello there"
    assert result.response_id and result.response_id.startswith("resp_")
    assert cassette.play_count == 1 and cassette.all_played


def test_replay_without_the_ignored_field_is_a_miss_naming_the_difference(recorded: Path
                                                                          ) -> None:
    with use_cassette(recorded), make_client(DEAD, retry=3) as c, pytest.raises(
            NoMatchingInteractionError) as info:
        c.stream(request(prompt_cache_key="another"))
    message = str(info.value)
    assert "POST http://127.0.0.1:9/v1/responses" in message
    assert '"prompt_cache_key": "another"' in message  # the body summary
    assert '"input": [1 item]' in message
    assert '$.prompt_cache_key: "another" != "cache-1" recorded' in message
    assert isinstance(info.value, CassetteError) and isinstance(info.value, CodexApiError)


def test_json_bodies_match_whatever_their_key_order(recorded: Path) -> None:
    body = yaml.safe_load(recorded.read_text())["interactions"][0]["request"]["body"]
    reordered = dict(reversed(list(json.loads(body).items())))
    with use_cassette(recorded):
        seed = ResponsesClient(Urllib3Transport(), Provider(base_url=DEAD))
        assert seed.stream(reordered).collect().text == "You said: Hello there"


def test_replayed_stream_is_read_event_by_event(recorded: Path) -> None:
    with use_cassette(recorded, ignore_fields=["prompt_cache_key"]), make_client(DEAD) as c:
        stream = c.stream(request())
        raw = stream.response._raw  # type: ignore[attr-defined]
        assert type(raw).__name__ == "VCRHTTPResponse"  # vcrpy's stub, not urllib3's
        total = len(raw.recorded_response["body"]["string"])
        events = iter(stream)
        next(events)
        first_delta = next(e for e in events if isinstance(e, OutputTextDelta))
        # The first delta came out while most of the body was still unread.
        assert first_delta.delta == "You"
        assert raw.tell() < total / 2
        rest = "".join(e.delta for e in events if isinstance(e, OutputTextDelta))
    assert "You" + rest == "You said: Hello there"


def test_replay_mode_refuses_the_network(tmp_path: Path, server: EmbeddedServer) -> None:
    with use_cassette(tmp_path / "empty.yaml"), pytest.raises(NetworkBlockedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=2)
    # and the block ends with the cassette
    socket.create_connection(("127.0.0.1", server.port), timeout=2).close()


def test_missing_cassette_says_how_to_record_it(tmp_path: Path) -> None:
    with use_cassette(tmp_path / "nope.yaml"), make_client(DEAD) as c, pytest.raises(
            NoMatchingInteractionError, match="does not exist: record it with pytest "
                                              "--codexapi-record-mode=once"):
        c.stream(request())


def test_each_interaction_plays_once(recorded: Path) -> None:
    with use_cassette(recorded, ignore_fields=["prompt_cache_key"]), make_client(DEAD) as c:
        c.stream(request()).collect()
        with pytest.raises(NoMatchingInteractionError, match="already played"):
            c.stream(request())


def test_new_episodes_adds_and_keeps_scrubbing(recorded: Path, server: EmbeddedServer) -> None:
    auth = BearerAuth("sk-other-0123456789")
    with use_cassette(recorded, "new_episodes", ignore_fields=["prompt_cache_key"]), make_client(
            server.base_url, auth=auth) as c:
        assert c.stream(request()).collect().text == "You said: Hello there"  # replayed
        assert c.stream(request("Second")).collect().text == "You said: Second"  # recorded
    assert [i.request_json()["input"][0]["content"][0]["text"]
            for i in load_interactions(recorded)] == ["Hello there", "Second"]
    assert "sk-other" not in recorded.read_text()


def test_corrupt_cassette_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("interactions:\n- request:\n    method: POST\n    uri: [unclosed\n")
    with pytest.raises(CorruptCassetteError) as info:
        load_interactions(path)
    assert info.value.path == str(path) and info.value.line == 5
    assert f"{path}:5" in str(info.value)
    with pytest.raises(CorruptCassetteError, match=r"broken\.yaml:5"), use_cassette(path):
        pass


@pytest.mark.parametrize(("text", "why"), [
    ("- just\n- a list\n", "expected a mapping"),
    ("version: 1\n", "no `interactions` list"),
    ("interactions:\n- request: {method: GET, uri: 'http://x/'}\n", "interaction #1: missing "
                                                                    "`response`"),
])
def test_cassette_of_the_wrong_shape_is_corrupt(tmp_path: Path, text: str, why: str) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(text)
    with pytest.raises(CorruptCassetteError, match=why):
        load_interactions(path)


def test_unknown_record_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match="unknown record mode 'sometimes'"), use_cassette(
            tmp_path / "x.yaml", "sometimes"):
        pass


def _write(path: Path, interactions: list[Interaction]) -> None:
    from vcr.request import Request

    requests = [Request(i.method, i.uri, i.request_body, dict(i.request_headers))
                for i in interactions]
    responses = [{"status": {"code": i.status, "message": i.reason},
                  "headers": {k: [v] for k, v in i.headers}, "body": {"string": i.body}}
                 for i in interactions]
    path.write_text(dump_cassette(requests, responses))


@pytest.mark.parametrize("stored", ["gzip", "decoded"])
def test_transport_decodes_what_stock_vcrpy_replays_whether_stored_compressed_or_not(
        tmp_path: Path, stored: str) -> None:
    # vcrpy keeps `Content-Encoding: gzip` both for bodies recorded through requests/httpx
    # (gzip bytes) and through urllib3 (already decoded), and replays them through a plain
    # http.client response that decodes nothing: codexapi.testing.VcrTransport copes with both
    # (the production transport only ever sees urllib3's decoded bodies).
    import vcr

    payload = json.dumps({"object": "list", "data": [{"id": "gpt-x"}]}).encode()
    body = gzip.compress(payload) if stored == "gzip" else payload
    path = tmp_path / "gz.yaml"
    _write(path, [Interaction("GET", "https://api.example.com/v1/models", (), None, 200, "OK",
                              (("Content-Type", "application/json"),
                               ("Content-Encoding", "gzip")), body)])
    with vcr.use_cassette(str(path), record_mode="none", allow_playback_repeats=True):
        request = HttpRequest("GET", "https://api.example.com/v1/models", {})
        raw = Urllib3Transport().send(request)
        assert type(raw._raw).__name__ == "VCRHTTPResponse"  # type: ignore[attr-defined]
        raw.close()
        response = VcrTransport().send(request)
        assert response.headers["content-encoding"] == "gzip"
        assert response.read() == payload
        assert VcrTransport().send(request).read() == payload


@pytest.mark.shared("real-cassettes")
def test_transport_decodes_a_real_gzip_cassette_under_stock_vcrpy() -> None:
    import vcr

    path = REAL / "simonw-llm" / "test_responses_basic_non_streaming.yaml"
    original = load_interactions(path)[0]
    assert original.body[:2] == b"\x1f\x8b"  # stored compressed
    with vcr.use_cassette(str(path), record_mode="none", match_on=["method", "path"]):
        response = VcrTransport().send(HttpRequest(
            "POST", "https://api.openai.com/v1/responses", {"Content-Type": "application/json"},
            original.request_body), stream=False)
        assert json.loads(response.read()) == original.response_json()


@pytest.mark.shared("real-cassettes")
def test_loading_through_use_cassette_normalizes_old_recordings() -> None:
    # Loaded interactions pass the record hooks too: bodies decoded, secrets scrubbed, while
    # rate-limit counters (whose names contain "tokens") are kept for replays.
    path = REAL / "simonw-llm" / "test_responses_basic_non_streaming.yaml"
    with use_cassette(path, match_on=("method", "path")):
        response = Urllib3Transport().send(HttpRequest(
            "POST", "https://api.openai.com/v1/responses", {}, b"{}"), stream=False)
        assert "content-encoding" not in response.headers
        assert response.headers["openai-organization"] == "<redacted>"
        assert response.headers["x-ratelimit-remaining-tokens"].isdigit()
        assert json.loads(response.read())["object"] == "response"


@pytest.mark.shared("real-cassettes")
def test_recording_stores_gzip_bodies_decoded_and_account_response_headers_scrubbed(
        tmp_path: Path) -> None:
    # A server that answers with gzip and account headers: a real OpenAI answer, served.
    source = REAL / "simonw-llm" / "test_responses_basic_non_streaming.yaml"
    original = load_interactions(source)[0]
    target = tmp_path / "rec.yaml"
    with serve_cassette(source) as srv, use_cassette(target, "once"):
        response = Urllib3Transport().send(
            HttpRequest("POST", srv.base_url + "/responses",
                        {"Content-Type": "application/json"}, original.request_body), False)
        assert json.loads(response.read()) == original.response_json()
    text = target.read_text()
    assert "!!binary" not in text and "H4sI" not in text
    stored = load_interactions(target)[0]
    assert stored.header("content-encoding") is None
    assert json.loads(stored.body) == original.response_json()
    assert stored.header("openai-organization") == "<redacted>"
    assert all(v == "<redacted>" for k, v in stored.headers if k.lower() == "set-cookie")
    assert original.header("openai-organization") not in text


def test_request_summary_in_a_miss_is_short_and_redacted(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    with use_cassette(path), pytest.raises(NoMatchingInteractionError) as info:
        Urllib3Transport().send(HttpRequest(
            "POST", "https://api.example.com/v1/responses?api_key=sekrit",
            {"Content-Type": "application/json"}, json.dumps({"input": "x" * 500}).encode()),
            True)
    message = str(info.value)
    assert "sekrit" not in message and "api_key=%3Credacted%3E" in message.replace(
        "<redacted>", "%3Credacted%3E")
    assert '{"input": "xxxx' in message and 'xxx...}' in message and 'x' * 100 not in message


@pytest.mark.parametrize("compress", [gzip.compress, __import__("zlib").compress, None])
def test_inflater_copes_with_bodies_split_anywhere(compress: Any) -> None:
    from codexapi.testing.transport import _Inflater

    payload = b'{"a": "' + b"x" * 3000 + b'"}'
    data = compress(payload) if compress else payload
    inflater = _Inflater()
    out = b"".join(piece for i in range(len(data)) for piece in inflater.feed(data[i:i + 1]))
    out += inflater.flush()
    assert out == payload


def test_a_key_echoed_in_a_response_body_is_scrubbed_too(tmp_path: Path) -> None:
    key = "sk-echo-0123456789abcdef"
    echo = Interaction("POST", "http://127.0.0.1/v1/responses", (), None, 401, "Unauthorized",
                       (("Content-Type", "application/json"),),
                       json.dumps({"error": {"message": f"Incorrect API key provided: {key}",
                                             "code": "invalid_api_key"}}).encode())
    from codexapi.testing import CassettePlayer

    server = EmbeddedServer()
    server.httpd.responder = CassettePlayer([echo])
    target = tmp_path / "echo.yaml"
    with server, use_cassette(target, "once"), \
            make_client(server.base_url, auth=BearerAuth(key)) as c, \
            pytest.raises(CodexApiError) as info:
        c.stream(request())
    assert key not in str(info.value)  # the client's own scrubbing
    text = target.read_text()
    assert key not in text
    assert "Incorrect API key provided: <redacted>" in text


def test_openai_python_records_and_replays_too(tmp_path: Path, server: EmbeddedServer) -> None:
    import openai

    def ask(base_url: str) -> str:
        oai = openai.OpenAI(base_url=base_url, api_key="sk-oai-0123456789abcdef",
                            max_retries=0, timeout=10)
        events = list(oai.responses.create(model="gpt-5", input="Hi there", stream=True))
        return str(events[-1].response.output_text)

    path = tmp_path / "oai.yaml"
    with use_cassette(path, "once"):
        assert ask(server.base_url) == "You said: Hi there"
    assert "sk-oai" not in path.read_text()
    with use_cassette(path) as cassette:
        assert ask(DEAD) == "You said: Hi there"
    assert cassette.all_played


def test_record_mode_all_replaces_the_cassette(recorded: Path, server: EmbeddedServer) -> None:
    with use_cassette(recorded, "all") as cassette, make_client(server.base_url) as c:
        assert c.stream(request("Fresh")).collect().text == "You said: Fresh"
        assert [i.status for i in cassette.interactions()] == [200]
    texts = [i.request_json()["input"][0]["content"][0]["text"]
             for i in load_interactions(recorded)]
    assert texts == ["Fresh"]  # the stale "Hello there" recording is gone
