"""A sub-agent's session: ``SessionContext(subagent=..., parent_thread_id=...)`` sends
``x-openai-subagent`` and ``x-codex-parent-thread-id`` on every request of the session."""

from __future__ import annotations

import pytest

from codexapi import Client, ConfigError, ResponsesRequest, SessionContext
from codexapi.server import EmbeddedServer

REQUEST = ResponsesRequest(model="m", input="hi")


def test_subagent_and_parent_thread_headers_reach_the_server(server: EmbeddedServer,
                                                             client: Client) -> None:
    session = SessionContext.for_thread("child-thread", subagent="collab_spawn",
                                        parent_thread_id="parent-thread")
    client.stream(REQUEST, session=session).collect()
    client.compact(REQUEST, session=session.new_turn())
    for _method, _path, headers, _body in list(server.requests)[-2:]:
        assert headers["x-openai-subagent"] == "collab_spawn"
        assert headers["x-codex-parent-thread-id"] == "parent-thread"
        assert headers["thread-id"] == "child-thread"


def test_headers_are_absent_for_a_top_level_session(server: EmbeddedServer,
                                                    client: Client) -> None:
    client.stream(REQUEST, session=SessionContext.for_thread("root")).collect()
    headers = server.requests[-1][2]
    assert "x-openai-subagent" not in headers and "x-codex-parent-thread-id" not in headers


def test_order_follows_the_window_id() -> None:
    names = list(SessionContext.for_thread("t", subagent="review",
                                           parent_thread_id="p").headers())
    order = [names.index(n) for n in ("x-codex-window-id", "x-openai-subagent",
                                      "x-codex-parent-thread-id", "x-client-request-id")]
    assert order == sorted(order)


def test_explicit_subagent_argument_wins_over_the_session(server: EmbeddedServer,
                                                          client: Client) -> None:
    client.stream(REQUEST, subagent="review",
                  session=SessionContext(subagent="compact")).collect()
    assert server.requests[-1][2]["x-openai-subagent"] == "review"


@pytest.mark.parametrize("field", ["subagent", "parent_thread_id"])
def test_a_value_that_cannot_be_a_header_is_a_config_error(field: str) -> None:
    with pytest.raises(ConfigError, match="x-"):
        SessionContext(**{field: "a\r\nInjected: 1"}).headers()
