"""The session a request belongs to, as the Codex CLI tells the server in its headers.

A :class:`SessionContext` is a value: build one per session, and a new one per turn with
:meth:`SessionContext.new_turn` (the turn's metadata changes, and each turn has its own
:class:`TurnState`). ``Client.stream`` and ``Client.compact`` take it as ``session=``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .convert import dumps
from .errors import ConfigError
from .http.headers import has_control

TURN_STATE_HEADER = "x-codex-turn-state"


class TurnState:
    """The server's ``x-codex-turn-state`` for one turn: captured from the first reply that
    carries it (a stream, a compact or a WebSocket upgrade) and sent back on every later
    request of the same turn. Set once, like the crate's ``OnceLock``; thread-safe."""

    __slots__ = ("_lock", "_value")

    def __init__(self, value: str | None = None) -> None:
        self._lock = threading.Lock()
        self._value = value

    @property
    def value(self) -> str | None:
        return self._value

    def capture(self, value: str | None) -> None:
        """Keep ``value`` unless a value is already kept (the first reply's wins)."""
        if not value or self._value is not None:
            return
        with self._lock:
            if self._value is None:
                self._value = value

    def __repr__(self) -> str:
        return f"TurnState({self._value!r})"


def _json_text(value: str | Mapping[str, Any] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return dumps(dict(value)).decode()


def _features(value: str | Sequence[str] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return ",".join(value)


@attrs.frozen
class SessionContext:
    """The Codex session headers of a request (each omitted when None):

    ``session_id`` -> ``session-id``, ``thread_id`` -> ``thread-id``, ``client_request_id``
    -> ``x-client-request-id`` (the CLI sends the thread id, the same on every request of a
    session), ``window_id`` -> ``x-codex-window-id`` (``"<thread id>:<window number>"``),
    ``turn_metadata`` -> ``x-codex-turn-metadata`` (a JSON string, or a mapping sent as
    compact JSON), ``beta_features`` -> ``x-codex-beta-features`` (a string or a list, sent
    comma-separated), ``originator`` and ``version``; for a sub-agent's session, ``subagent``
    -> ``x-openai-subagent`` (what kind: ``review``, ``compact``, ``collab_spawn``...) and
    ``parent_thread_id`` -> ``x-codex-parent-thread-id`` (the thread that spawned it).
    :meth:`for_thread` fills the three ids the way the CLI does.
    """

    session_id: str | None = None
    thread_id: str | None = None
    client_request_id: str | None = None
    window_id: str | None = None
    turn_metadata: str | None = attrs.field(default=None, converter=_json_text)
    beta_features: str | None = attrs.field(default=None, converter=_features)
    originator: str | None = None
    version: str | None = None
    subagent: str | None = None
    parent_thread_id: str | None = None
    turn_state: TurnState = attrs.field(factory=TurnState, eq=False)

    @classmethod
    def for_thread(cls, thread_id: str, **kw: Any) -> SessionContext:
        """``session-id``, ``thread-id`` and ``x-client-request-id`` all ``thread_id``, and
        window 0 unless ``window_id`` is given, as the Codex CLI sends them."""
        kw.setdefault("window_id", f"{thread_id}:0")
        return cls(session_id=thread_id, thread_id=thread_id, client_request_id=thread_id,
                   **kw)

    def new_turn(self, **changes: Any) -> SessionContext:
        """The same session for a new turn: ``changes`` applied, a fresh :class:`TurnState`."""
        changes.setdefault("turn_state", TurnState())
        return attrs.evolve(self, **changes)

    def headers(self) -> dict[str, str]:
        """The headers, in the order the Codex CLI sends them; ``x-codex-turn-state`` is
        included once the turn has one. Raises ConfigError for a value that cannot be a
        header (a line break, a non-ASCII character)."""
        pairs = (
            ("version", self.version),
            ("x-codex-beta-features", self.beta_features),
            ("x-codex-window-id", self.window_id),
            ("x-openai-subagent", self.subagent),
            ("x-codex-parent-thread-id", self.parent_thread_id),
            ("x-codex-turn-metadata", self.turn_metadata),
            ("x-client-request-id", self.client_request_id),
            ("session-id", self.session_id),
            ("thread-id", self.thread_id),
            ("originator", self.originator),
            (TURN_STATE_HEADER, self.turn_state.value),
        )
        out: dict[str, str] = {}
        for name, value in pairs:
            if value is None:
                continue
            if not value.isascii() or has_control(value):
                raise ConfigError(f"SessionContext value for header {name!r} must be printable "
                                  "ASCII without line breaks")
            out[name] = value
        return out


__all__ = ["TURN_STATE_HEADER", "SessionContext", "TurnState"]
