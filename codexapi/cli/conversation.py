"""Conversations of ``codexapi chat``: the history of turns, saved so ``-c`` can resume one.

Conversations are kept in an SQLite database in the state directory (:mod:`.store`:
``$CODEXAPI_STATE_DIR``, else ``$XDG_DATA_HOME/codexapi``, else ``~/.local/share/codexapi``),
beside the REPL's line ``history``, until the user deletes them. A conversation remembers where
it ran (base URL, wire, Codex provider id, or the embedded server) so ``-c`` and ``--cid`` go
on there unless an option names another.

A resumed turn sends the saved history as input, which works on every server and wire. When
the conversation asks the server to store responses (``chat --store``, the default on Azure),
the next turn on the same server and a Responses wire sends only the new message and
``previous_response_id``; see :meth:`Conversation.request`. The history is saved all the same,
so a server that has lost the response can still be sent the whole conversation.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..attachments import MAX_ATTACHMENT, Attachment
from ..convert import item_to_json
from ..errors import ConfigError
from ..items import InputItem, Item
from ..models import ResponsesRequest, TextControls, WireApi
from .store import STATE_ENV, Store, TurnRecord, answer_of, state_dir, text_of


@attrs.define
class Conversation:
    """One conversation: what is needed to send its next turn, and where it ran."""

    id: str
    model: str
    instructions: str
    base_url: str
    wire: str
    #: Whether the server is asked to store responses (then previous_response_id is used).
    store: bool = False
    items: list[dict[str, Any]] = attrs.field(factory=list)
    last_response_id: str | None = None
    created: float = attrs.field(factory=time.time)
    #: The Codex config provider id it ran with (``--provider``, or ``openai`` when chosen by
    #: ``$OPENAI_API_KEY``), else None.
    provider: str | None = None
    #: Whether it ran on the embedded offline server (whose URL changes every run).
    embedded: bool = False
    _unsaved: list[TurnRecord] = attrs.field(factory=list, eq=False, repr=False, alias="unsaved")

    @classmethod
    def new(cls, model: str, instructions: str, base_url: str, wire: str,
            store: bool = False) -> Conversation:
        return cls(f"conv_{uuid.uuid4().hex[:16]}", model, instructions, base_url, wire, store)

    def chains_on(self, base_url: str, wire: str) -> bool:
        """Whether the next turn to ``base_url`` over ``wire`` can continue from the last
        response by id: the server was asked to store it, it is the server that answered it,
        and the wire is a Responses one (Chat Completions has no ``previous_response_id``)."""
        return bool(self.store and self.last_response_id and base_url == self.base_url
                    and wire != WireApi.CHAT)

    def request(self, message: Mapping[str, Any], base_url: str,
                text: TextControls | None = None, *, wire: str = WireApi.RESPONSES,
                history: bool = False) -> ResponsesRequest:
        """The request for the next turn: ``message`` after ``previous_response_id`` when
        :meth:`chains_on` says so (and ``history`` is false), else after the saved history."""
        if not history and self.chains_on(base_url, wire):
            return ResponsesRequest(
                model=self.model, instructions=self.instructions, input=[dict(message)],
                store=True, text=text, previous_response_id=self.last_response_id)
        # Item ids name items of stored responses; a server sent the history is one that does
        # not have them (or stored nothing) and rejects ids it does not know. The crate drops
        # ids on input too.
        items = [{k: v for k, v in item.items() if k != "id"} for item in self.items]
        return ResponsesRequest(model=self.model, instructions=self.instructions,
                                input=[*items, dict(message)], store=self.store or None,
                                text=text)

    def add_turn(self, message: Mapping[str, Any], output: Iterable[Item | InputItem],
                 response_id: str | None) -> None:
        """Record a finished turn: the user's message and what came after it (the model's
        items, and with tools each call's output)."""
        turn = [dict(message)]
        for item in output:
            data = item_to_json(item)
            if data.get("type") == "reasoning" and not data.get("encrypted_content"):
                continue  # without its encrypted blob a reasoning item cannot be replayed
            turn.append(data)  # with its id, which request() does not send back
        self.items.extend(turn)
        self._unsaved.append(TurnRecord(time.time(), self.model, text_of(turn[0]),
                                        answer_of(turn), turn, response_id or None))
        self.last_response_id = response_id or None

    # --- storage --------------------------------------------------------------------------

    def save(self, directory: Path | None = None, secrets: Iterable[str] = ()) -> Path:
        """Write the conversation and its new turns (``secrets``' values scrubbed from them);
        returns the database file."""
        store = Store(directory)
        row = {"id": self.id, "model": self.model, "instructions": self.instructions,
               "base_url": self.base_url, "wire": str(self.wire), "provider": self.provider,
               "embedded": self.embedded, "store": self.store,
               "last_response_id": self.last_response_id, "created": self.created}
        store.save(row, self._unsaved, secrets)
        self._unsaved.clear()
        return store.path

    @classmethod
    def load(cls, conversation_id: str, directory: Path | None = None) -> Conversation:
        row, turns = Store(directory).load(conversation_id)
        items = [item for turn in turns for item in turn.items]
        return cls(items=items, **row)

    @classmethod
    def last(cls, directory: Path | None = None) -> Conversation:
        """The conversation ``-c`` resumes: the one used last."""
        return cls.load(Store(directory).last_id(), directory)


# --- the user's message ---------------------------------------------------------------------


def user_message(text: str, files: Sequence[str | os.PathLike[str]] = ()) -> dict[str, Any]:
    """A user message: ``text``, then each file as an input part (images as ``input_image``,
    PDFs as ``input_file``, anything else as text headed by its name)."""
    parts: list[dict[str, Any]] = [{"type": "input_text", "text": text}] if text else []
    parts.extend(attachment(f) for f in files)
    if not parts:
        raise ConfigError("nothing to send: the prompt is empty")
    return {"type": "message", "role": "user", "content": parts}


def attachment(path: str | os.PathLike[str]) -> dict[str, Any]:
    """One file as a Responses input part (:class:`codexapi.Attachment`), its errors naming
    the ``--file`` option."""
    try:
        return Attachment.from_path(path)
    except ConfigError as exc:
        raise ConfigError(f"--file {exc}") from None


def schema_controls(path: str) -> TextControls:
    """``--schema FILE``: structured output following the JSON schema in FILE."""
    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--schema {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"--schema {path} is not JSON: {exc}") from None
    if not isinstance(schema, dict):
        raise ConfigError(f"--schema {path} must hold a JSON schema object")
    return TextControls.with_schema(schema)


__all__ = ["MAX_ATTACHMENT", "STATE_ENV", "Conversation", "attachment", "schema_controls",
           "state_dir", "user_message"]
