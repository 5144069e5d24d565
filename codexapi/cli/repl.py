"""``codexapi chat`` turns: one-shot, resumed (``-c``), or an interactive REPL.

The REPL reads a line, streams the answer, and keeps going: a bracketed paste (text pasted
into the terminal, newlines and all) is one message, the line editor's history (up arrow)
persists in the state directory, Ctrl-C cancels the turn in flight (the conversation
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
from ..items import InputItem, Item
from ..models import ReasoningConfig, ResponsesRequest, TextControls
from ..redact import REDACTED
from ..tools import Tool
from .conversation import Conversation, schema_controls, state_dir, user_message
from .options import DEFAULT_MODEL, Origin

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
    """A conversation driven from the terminal: :meth:`turn` sends one message. With
    ``tools`` (``--functions``) a turn runs the tool loop (:meth:`Client.run_tools`)."""

    def __init__(self, client: Client, conversation: Conversation, options: TurnOptions,
                 out: TextIO | None = None, err: TextIO | None = None,
                 tools: Sequence[Tool] = ()) -> None:
        self.client = client
        self.conversation = conversation
        self.options = options
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.tools = list(tools)
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
            conv.save(secrets=_secrets(self.client))
        except ConfigError as exc:
            # The answer is out; not being able to resume it later is worth a warning only.
            print(f"codexapi: warning: {exc}", file=self.err, flush=True)

    def _send(self, request: ResponsesRequest) -> tuple[list[Item | InputItem], str | None]:
        """Stream ``request`` to the terminal; (the items after the request's input: output
        items, and with tools each call's output; the last response id)."""
        from .terminal import ChatView

        opts = self.options
        output: list[Item | InputItem] = []
        response_id = None
        with ChatView(self.out, self.err, json_lines=opts.json_lines,
                      reasoning=opts.show_reasoning, usage=opts.usage) as view:
            if self.tools:
                run = self.client.run_tools(
                    request, self.tools, on_event=view.show, on_output=view.show_output,
                    conversation_id=opts.conversation_id, timeout=opts.timeout,
                    deadline=opts.deadline)
                return list(run.input[len(request.input):]), run.result.response_id
            with self.client.stream(request, conversation_id=opts.conversation_id,
                                    timeout=opts.timeout, deadline=opts.deadline) as events:
                for event in events:
                    view.show(event)
                    if isinstance(event, OutputItemDone):
                        output.append(event.item)
                    elif isinstance(event, Completed):
                        response_id = event.response_id
        return output, response_id


def _secrets(client: Client) -> list[str]:
    """The secret values ``client`` sends (its provider's secret headers and query values, its
    auth's headers), kept out of the conversation database."""
    from ..redact import secrets_of

    headers = dict(client.provider.headers)
    auth_headers = getattr(client.auth, "headers", None)
    if callable(auth_headers):
        with contextlib.suppress(Exception):
            headers.update(auth_headers())
    return secrets_of(headers, client.provider.url_for_path(""))


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
        if "libedit" not in (readline.__doc__ or ""):
            # A paste comes whole, newlines included, as one message: Python turns GNU
            # readline's bracketed paste off for its own prompt (bpo-42819); a chat wants it.
            readline.parse_and_bind("set enable-bracketed-paste on")
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


def start(client: Client, *, prompt: str | None, conversation: Conversation | None,
          model: str | None, instructions: str | None, options: TurnOptions,
          interactive: bool, origin: Origin, store: bool = False,
          default_model: str = DEFAULT_MODEL, tools: Sequence[Tool] = ()) -> int:
    """The ``chat`` command after its options are read: a turn, or the REPL. ``conversation``
    is the one resumed (``-c``, ``--cid``), or None for a new one. ``model`` None (no ``-m``)
    means the resumed conversation's, or ``default_model`` for a new one. ``store``
    (``--store``) asks the server to store responses, so later turns continue from the last
    one by id; a conversation remembers it (Azure Responses endpoints store by default).
    ``origin`` is where the client points, remembered so ``-c`` goes back there."""
    provider = client.provider
    if conversation is not None:
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
    conversation.provider, conversation.embedded = origin.provider_id, origin.embedded
    chat = Chat(client, conversation, options, tools=tools)
    if interactive:
        return repl(chat)
    chat.turn(prompt or "", options.files)
    return 0


def resumed_origin(conversation: Conversation) -> Origin:
    """Where ``conversation`` ran, for ``-c`` / ``--cid`` to go on there."""
    what = f"the base URL of conversation {conversation.id}"
    if conversation.embedded:
        return Origin(embedded=True, wire=conversation.wire)
    base_url: str | None = conversation.base_url
    if conversation.provider is not None and REDACTED in conversation.base_url:
        base_url = None  # a secret in the URL was not saved: the config has it
    return Origin(conversation.provider, base_url, wire=conversation.wire, what=what)


__all__ = ["DEFAULT_INSTRUCTIONS", "PREVIOUS_RESPONSE_NOT_FOUND", "Chat", "TurnOptions", "repl",
           "resumed_origin", "start"]
