"""An embedded OpenAI-compatible server with a scripted model: the offline default of
``codexapi chat`` and the server the integration tests talk to (always on 127.0.0.1)."""

from __future__ import annotations

from .app import ROUTES, EmbeddedServer, Exchange, route
from .model import ScriptedModel, ToolCall, Turn

__all__ = ["ROUTES", "EmbeddedServer", "Exchange", "ScriptedModel", "ToolCall", "Turn", "route"]
