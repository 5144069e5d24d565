"""An embedded OpenAI-compatible server with a scripted model: the offline default of
``codexapi chat`` and the server the integration tests talk to (always on 127.0.0.1)."""

from __future__ import annotations

from .app import ROUTES, EmbeddedServer, Exchange, route

# Imported for their @route registrations (responses, chat completions, compact, models).
from . import catalog, chat_wire, compaction, responses  # noqa: F401  # isort: skip
from .model import ModelInputError, ScriptedModel, ToolCall, Turn

__all__ = ["ROUTES", "EmbeddedServer", "Exchange", "ModelInputError", "ScriptedModel",
           "ToolCall", "Turn", "route"]
