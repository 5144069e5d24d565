from codexapi import Client, Completed, OutputTextDelta, ResponsesRequest


def test_stream_against_embedded_server(client: Client) -> None:
    events = list(client.stream(ResponsesRequest(model="m", input="Hello")))
    assert "".join(e.delta for e in events if isinstance(e, OutputTextDelta)) == "You said: Hello"
    assert isinstance(events[-1], Completed)
