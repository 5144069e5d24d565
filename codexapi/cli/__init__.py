"""The ``codexapi`` command line: commands, the chat REPL, how a stream is shown on a terminal,
and the conversation store. The library never imports this package."""

from __future__ import annotations

from .commands import main

__all__ = ["main"]
