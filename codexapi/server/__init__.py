"""An embedded OpenAI-compatible server with a scripted model: the offline default of
``codexapi chat`` and the server the integration tests talk to (always on 127.0.0.1)."""

from __future__ import annotations

from .app import ROUTES, EmbeddedServer, Exchange, route

# Imported for their registrations: routes (responses, chat completions, compact, models) and
# the WebSocket upgrade (which imports the `websockets` package only when a client upgrades).
from . import catalog, chat_wire, compaction, responses, websocket  # noqa: F401  # isort: skip
from .model import ScriptedModel, ToolCall, Turn

__all__ = ["ROUTES", "EmbeddedServer", "Exchange", "ScriptedModel", "ToolCall", "Turn", "route"]
