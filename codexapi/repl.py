"""``codexapi chat`` turns: one-shot, resumed (``-c``), or an interactive REPL.

The REPL reads a line, streams the answer, and keeps going: the line editor's history (up
arrow) persists in the state directory, Ctrl-C cancels the turn in flight (the conversation
stays as it was before it), Ctrl-C at the prompt clears the line, Ctrl-D or ``exit`` leaves.
Every finished turn is saved (:mod:`codexapi.conversation`), so ``codexapi chat -c`` picks
the conversation up later, in the REPL or with one more prompt.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import attrs

from .client import Client
from .conversation import Conversation, schema_controls, state_dir, user_message
from .errors import ConfigError
from .events import Completed, OutputItemDone
from .items import Item
from .models import ReasoningConfig, ResponsesRequest, TextControls

DEFAULT_INSTRUCTIONS = "You are a helpful assistant."
EXIT_WORDS = frozenset({"exit", "quit", "/exit", "/quit"})
HISTORY_LENGTH = 1000


@attrs.frozen
class TurnOptions:
    """How each turn is sent and shown (from the command line)."""

    reasoning_effort: str | None = None
    verbosity: str | None = None
    schema: str | None = None
    files: Sequence[str] = ()
    json_lines: bool = False
    show_reasoning: bool = True
    usage: bool = False
    conversation_id: str | None = None
    timeout: float | None = None
    deadline: float | None = None

    def text(self) -> TextControls | None:
        if self.schema is not None:
            fmt = schema_controls(self.schema).format
            return TextControls(verbosity=self.verbosity, format=fmt)
        return TextControls(verbosity=self.verbosity) if self.verbosity else None


class Chat:
    """A conversation driven from the terminal: :meth:`turn` sends one message."""

    def __init__(self, client: Client, conversation: Conversation, options: TurnOptions,
                 out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.client = client
        self.conversation = conversation
        self.options = options
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._text = options.text()  # reads --schema once, before anything is sent

    def request(self, message: dict[str, Any]) -> ResponsesRequest:
        req = self.conversation.request(message, self.client.provider.base_url, self._text)
        if self.options.reasoning_effort:
            req = attrs.evolve(req, reasoning=ReasoningConfig(
                effort=self.options.reasoning_effort, summary="auto"))
        return req

    def turn(self, text: str, files: Sequence[str] = ()) -> None:
        """Send ``text`` (and files), show the answer, record and save the turn."""
        from .terminal import ChatView

        message = user_message(text, files)
        opts = self.options
        output: list[Item] = []
        response_id = None
        with ChatView(self.out, self.err, json_lines=opts.json_lines,
                      reasoning=opts.show_reasoning, usage=opts.usage) as view, \
                self.client.stream(self.request(message), conversation_id=opts.conversation_id,
                                   timeout=opts.timeout, deadline=opts.deadline) as events:
            for event in events:
                view.show(event)
                if isinstance(event, OutputItemDone):
                    output.append(event.item)
                elif isinstance(event, Completed):
                    response_id = event.response_id
        self.conversation.add_turn(message, output, response_id)
        try:
            self.conversation.save()
        except ConfigError as exc:
            # The answer is out; not being able to resume it later is worth a warning only.
            print(f"codexapi: warning: {exc}", file=self.err, flush=True)


def repl(chat: Chat, read: Callable[[str], str] = input) -> int:
    """Read lines and send each as a turn until Ctrl-D or ``exit``; returns the exit code."""
    from .errors import CodexApiError

    history = _LineHistory()
    conv = chat.conversation
    note = f"codexapi chat with {conv.model}: Ctrl-D or 'exit' to leave, Ctrl-C cancels a turn"
    if conv.items:
        note += f" (continuing {conv.id}, {len(conv.items)} items)"
    print(note, file=chat.err, flush=True)
    files: Sequence[str] = chat.options.files  # attached to the first turn only
    try:
        while True:
            try:
                line = read("> ")
            except KeyboardInterrupt:
                print(file=chat.out, flush=True)  # a fresh prompt, as a shell does
                continue
            except EOFError:
                print(file=chat.out, flush=True)
                return 0
            if line.strip() in EXIT_WORDS:
                return 0
            if not line.strip():
                continue
            try:
                chat.turn(line, files)
                files = ()
            except KeyboardInterrupt:
                print("(cancelled)", file=chat.err, flush=True)
            except CodexApiError as exc:
                # The conversation goes on: say what failed, as the one-shot command would.
                print(f"codexapi: error: {type(exc).__name__}: {exc}", file=chat.err,
                      flush=True)
    finally:
        history.save()


class _LineHistory:
    """The line editor's history, kept in the state directory (when readline exists)."""

    def __init__(self) -> None:
        self.path = state_dir() / "history"
        try:
            import readline
        except ImportError:  # Windows without pyreadline: input() still works
            self.readline: Any = None
            return
        self.readline = readline
        readline.set_history_length(HISTORY_LENGTH)
        with contextlib.suppress(OSError):  # no history yet
            readline.read_history_file(self.path)

    def save(self) -> None:
        if self.readline is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.readline.write_history_file(self.path)
        except OSError:
            pass  # losing line history is not worth failing the session for


def start(client: Client, *, prompt: str | None, resume: bool, model: str,
          instructions: str | None, options: TurnOptions, interactive: bool) -> int:
    """The ``chat`` command after its options are read: a turn, or the REPL."""
    provider = client.provider
    if resume:
        conversation = Conversation.last()
        conversation.model = model
        if instructions is not None:
            conversation.instructions = instructions
    else:
        conversation = Conversation.new(model, instructions or DEFAULT_INSTRUCTIONS,
                                        provider.base_url, str(provider.wire),
                                        store=provider.is_azure_responses_endpoint())
    chat = Chat(client, conversation, options)
    if interactive:
        return repl(chat)
    chat.turn(prompt or "", options.files)
    return 0


__all__ = ["DEFAULT_INSTRUCTIONS", "Chat", "TurnOptions", "repl", "start"]
