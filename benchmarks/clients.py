"""The two clients under test, built the same way for every case.

Both are real clients doing their real work: codexapi's ``Client.stream`` (dispatcher, transport
response, SSE decoder, wire decoder, ``ResponseStream``) and openai-python's
``client.responses.create(stream=True)`` / ``chat.completions.create(stream=True)`` (httpx
response, ``SSEDecoder``, ``Stream``, typed pydantic events). For the in-memory decode cases each
gets a transport that hands out the body from memory in 64 KiB pieces instead of a socket.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from codexapi import Client, Message, Provider, ResponsesRequest, RetryPolicy, WireApi
from codexapi.testing import MockResponse, MockTransport

from .bodies import MODEL

API_KEY = "sk-bench-0000000000000000"
REQUEST = ResponsesRequest(model=MODEL, input=[Message(role="user", content="Hello")])
CHAT_MESSAGES = [{"role": "user", "content": "Hello"}]


def memory_transport(chunks: list[bytes]) -> MockTransport:
    """codexapi's Transport seam (the public :class:`codexapi.testing.MockTransport`),
    answering every request with the same chunks, one per read."""
    headers = {"content-type": "text/event-stream"}
    transport = MockTransport(lambda request: MockResponse(200, chunks, headers))
    # It records every request for tests to look at; thousands of runs would keep them all,
    # and a heap that grows run after run makes every later run (and gc.collect) slower.
    transport.requests = _Forget()
    return transport


class _Forget(list):  # type: ignore[type-arg]
    def append(self, item: Any) -> None:
        pass


def codexapi_client(base_url: str, chat: bool = False, transport: Any = None,
                    plugins: tuple[Any, ...] = (), wire: str | None = None) -> Client:
    import codexapi

    provider = Provider(name="bench", base_url=base_url,
                        wire=wire or (WireApi.CHAT if chat else WireApi.RESPONSES),
                        retry=RetryPolicy(max_attempts=1), stream_idle_timeout=60.0)
    return Client(provider, auth=codexapi.BearerAuth(API_KEY), plugins=plugins,
                  load_entrypoints=False, transport=transport)


def codexapi_stream(client: Client) -> Iterator[Any]:
    return iter(client.stream(REQUEST))


def openai_client(base_url: str, chunks: list[bytes] | None = None) -> Any:
    import httpx2
    import openai

    http_client = None
    if chunks is not None:
        class Body(httpx2.SyncByteStream):
            def __iter__(self) -> Iterator[bytes]:
                return iter(chunks)

        def handler(request: Any) -> Any:
            return httpx2.Response(200, headers={"content-type": "text/event-stream"},
                                   stream=Body())

        http_client = httpx2.Client(transport=httpx2.MockTransport(handler))
    return openai.OpenAI(api_key=API_KEY, base_url=base_url, max_retries=0, timeout=60.0,
                         http_client=http_client)


def openai_stream(client: Any, chat: bool = False) -> Iterator[Any]:
    if chat:
        return iter(client.chat.completions.create(model=MODEL, messages=CHAT_MESSAGES,
                                                   stream=True))
    return iter(client.responses.create(model=MODEL, input="Hello", stream=True))
