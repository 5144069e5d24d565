"""``codexapi chat`` turns: one-shot, resumed (``-c``), or an interactive REPL.

The REPL reads a line, streams the answer, and keeps going: the line editor's history (up
arrow) persists in the state directory, Ctrl-C cancels the turn in flight (the conversation
stays as it was before it), Ctrl-C at the prompt clears the line, Ctrl-D or ``exit`` leaves.
Every finished turn is saved (:mod:`codexapi.cli.conversation`), so ``codexapi chat -c`` picks
the conversation up later, in the REPL or with one more prompt.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import attrs

from ..client import Client
from ..errors import CodexApiError, ConfigError
from ..events import Completed, OutputItemDone
from ..items import Item
from ..models import ReasoningConfig, ResponsesRequest, TextControls
from .conversation import Conversation, schema_controls, state_dir, user_message
from .options import DEFAULT_MODEL

DEFAULT_INSTRUCTIONS = "You are a helpful assistant."
EXIT_WORDS = frozenset({"exit", "quit", "/exit", "/quit"})
HISTORY_LENGTH = 1000
#: The API's error code for a ``previous_response_id`` it does not have (expired, or never
#: stored there).
PREVIOUS_RESPONSE_NOT_FOUND = "previous_response_not_found"


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

    def request(self, message: dict[str, Any], history: bool = False) -> ResponsesRequest:
        provider = self.client.provider
        req = self.conversation.request(message, provider.base_url, self._text,
                                        wire=str(provider.wire), history=history)
        if self.options.reasoning_effort:
            req = attrs.evolve(req, reasoning=ReasoningConfig(
                effort=self.options.reasoning_effort, summary="auto"))
        return req

    def turn(self, text: str, files: Sequence[str] = ()) -> None:
        """Send ``text`` (and files), show the answer, record and save the turn."""
        message = user_message(text, files)
        request = self.request(message)
        try:
            output, response_id = self._send(request)
        except CodexApiError as exc:
            if (request.previous_response_id is None
                    or getattr(exc, "code", None) != PREVIOUS_RESPONSE_NOT_FOUND):
                raise
            # Expired, or another server behind the same URL: the saved history still holds
            # the whole conversation.
            print(f"codexapi: warning: the server no longer has response "
                  f"{request.previous_response_id}; sending the conversation's "
                  f"{len(self.conversation.items)} saved items instead", file=self.err,
                  flush=True)
            output, response_id = self._send(self.request(message, history=True))
        conv = self.conversation
        # The last response id now belongs to this server (a resumed conversation may have
        # moved to another one).
        conv.base_url, conv.wire = self.client.provider.base_url, str(self.client.provider.wire)
        conv.add_turn(message, output, response_id)
        try:
            conv.save()
        except ConfigError as exc:
            # The answer is out; not being able to resume it later is worth a warning only.
            print(f"codexapi: warning: {exc}", file=self.err, flush=True)

    def _send(self, request: ResponsesRequest) -> tuple[list[Item], str | None]:
        """Stream ``request`` to the terminal; (output items, response id)."""
        from .terminal import ChatView

        opts = self.options
        output: list[Item] = []
        response_id = None
        with ChatView(self.out, self.err, json_lines=opts.json_lines,
                      reasoning=opts.show_reasoning, usage=opts.usage) as view, \
                self.client.stream(request, conversation_id=opts.conversation_id,
                                   timeout=opts.timeout, deadline=opts.deadline) as events:
            for event in events:
                view.show(event)
                if isinstance(event, OutputItemDone):
                    output.append(event.item)
                elif isinstance(event, Completed):
                    response_id = event.response_id
        return output, response_id


def repl(chat: Chat, read: Callable[[str], str] = input) -> int:
    """Read lines and send each as a turn until Ctrl-D or ``exit``; returns the exit code."""
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


def start(client: Client, *, prompt: str | None, resume: bool, model: str | None,
          instructions: str | None, options: TurnOptions, interactive: bool,
          store: bool = False, default_model: str = DEFAULT_MODEL) -> int:
    """The ``chat`` command after its options are read: a turn, or the REPL. ``model`` None
    (no ``-m``) means the resumed conversation's, or ``default_model`` for a new one. ``store``
    (``--store``) asks the server to store responses, so later turns continue from the last
    one by id; a conversation remembers it (Azure Responses endpoints store by default)."""
    provider = client.provider
    if resume:
        conversation = Conversation.last()
        if model is not None:
            conversation.model = model
        if instructions is not None:
            conversation.instructions = instructions
        conversation.store = conversation.store or store
    else:
        conversation = Conversation.new(model or default_model,
                                        instructions or DEFAULT_INSTRUCTIONS,
                                        provider.base_url, str(provider.wire),
                                        store=store or provider.is_azure_responses_endpoint())
    chat = Chat(client, conversation, options)
    if interactive:
        return repl(chat)
    chat.turn(prompt or "", options.files)
    return 0


__all__ = ["DEFAULT_INSTRUCTIONS", "PREVIOUS_RESPONSE_NOT_FOUND", "Chat", "TurnOptions", "repl",
           "start"]
