"""Conversations of ``codexapi chat``: the history of turns, saved so ``-c`` can resume one.

State lives in a small directory: ``$CODEXAPI_STATE_DIR`` if set, else
``$XDG_DATA_HOME/codexapi``, else ``~/.local/share/codexapi``. It holds one JSON file per
conversation (``conversations/<id>.json``: model, instructions, server, the items sent and
received), ``last`` (the id of the conversation to resume) and the REPL's line ``history``.
Only the newest :data:`KEEP` conversations are kept.

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
from ..errors import ConfigError
from ..items import Item
from ..models import ResponsesRequest, TextControls, WireApi

#: Conversations kept on disk; older ones are removed when a new one is saved.
KEEP = 100
STATE_ENV = "CODEXAPI_STATE_DIR"


def state_dir() -> Path:
    """Where conversations are kept (not created until something is saved)."""
    override = os.environ.get(STATE_ENV)
    if override:
        return Path(override)
    data = os.environ.get("XDG_DATA_HOME")
    base = Path(data) if data else Path.home() / ".local" / "share"
    return base / "codexapi"


@attrs.define
class Conversation:
    """One conversation: what is needed to send its next turn."""

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

    def add_turn(self, message: Mapping[str, Any], output: Iterable[Item],
                 response_id: str | None) -> None:
        """Record a finished turn: the user's message and what the model answered."""
        self.items.append(dict(message))
        for item in output:
            data = item.to_dict()
            if item.type == "reasoning" and not data.get("encrypted_content"):
                continue  # without its encrypted blob a reasoning item cannot be replayed
            self.items.append(data)  # with its id, which request() does not send back
        self.last_response_id = response_id or None

    # --- storage --------------------------------------------------------------------------

    def save(self, directory: Path | None = None) -> Path:
        """Write the conversation and mark it the last one; returns its file."""
        root = directory or state_dir()
        folder = root / "conversations"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{self.id}.json"
            _write(path, json.dumps(attrs.asdict(self), ensure_ascii=False))
            _write(root / "last", self.id)
        except OSError as exc:
            raise ConfigError(f"cannot save the conversation in {root}: "
                              f"{exc.strerror or exc} (set {STATE_ENV} to another "
                              "directory)") from None
        _prune(folder)
        return path

    @classmethod
    def load(cls, conversation_id: str, directory: Path | None = None) -> Conversation:
        root = directory or state_dir()
        path = root / "conversations" / f"{conversation_id}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except FileNotFoundError:
            raise ConfigError(f"no saved conversation {conversation_id!r} in {root}") from None
        except (OSError, ValueError, TypeError) as exc:
            raise ConfigError(f"cannot read the saved conversation {path}: {exc}") from None

    @classmethod
    def last(cls, directory: Path | None = None) -> Conversation:
        """The conversation ``-c`` resumes."""
        root = directory or state_dir()
        try:
            conversation_id = (root / "last").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ConfigError(f"no conversation to continue yet (none saved in {root})"
                              ) from None
        except OSError as exc:
            raise ConfigError(f"cannot read {root / 'last'}: {exc.strerror or exc}") from None
        return cls.load(conversation_id, root)


def _write(path: Path, text: str) -> None:
    # Write then rename: a crash or a second codexapi never leaves a half-written file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _prune(folder: Path) -> None:
    try:
        files = sorted(folder.glob("conv_*.json"), key=lambda p: p.stat().st_mtime)
        for old in files[:-KEEP]:
            old.unlink()
    except OSError:
        pass  # pruning is housekeeping; the conversation itself was saved


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


__all__ = ["KEEP", "MAX_ATTACHMENT", "STATE_ENV", "Conversation", "attachment",
           "schema_controls", "state_dir", "user_message"]
