"""The Chat Completions wire (``POST chat/completions``). Placeholder until the Chat wire lands:
it claims no endpoint, so a Chat provider gets a clear UnsupportedEndpointError."""

from __future__ import annotations
