"""Where ``codexapi chat`` keeps its conversations: one SQLite database (stdlib ``sqlite3``) in
the state directory, ``conversations.db``.

A conversation row holds what its next turn needs (model, instructions, base URL, wire, Codex
provider id, whether it ran on the embedded server, ``store``, the last response id); each
finished turn is a row of its own (when, the model, the prompt and answer as text for ``codexapi
logs`` to list and search, and the turn's items to send again). Conversations are kept until the
user deletes them (``codexapi logs ID --delete``, or the file). Nothing secret is written: text
goes through :func:`codexapi.redact.scrub_text` with the client's secret values, URLs through
:func:`codexapi.redact.redact_url`.

The JSON files earlier versions wrote (``conversations/<id>.json`` and ``last``) are imported
the first time the database is opened, then moved to ``conversations.json-migrated/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigError
from ..redact import redact_url, scrub_text

DB_NAME = "conversations.db"
STATE_ENV = "CODEXAPI_STATE_DIR"
#: Seconds a writer waits for another codexapi holding the database.
BUSY_TIMEOUT = 10.0
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    instructions TEXT NOT NULL,
    base_url TEXT NOT NULL,
    wire TEXT NOT NULL,
    provider TEXT,
    embedded INTEGER NOT NULL DEFAULT 0,
    store INTEGER NOT NULL DEFAULT 0,
    last_response_id TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_update ON conversations (updated);
CREATE TABLE IF NOT EXISTS turns (
    conversation_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    at REAL NOT NULL,
    model TEXT NOT NULL,
    prompt TEXT NOT NULL,
    answer TEXT NOT NULL,
    items TEXT NOT NULL,
    response_id TEXT,
    PRIMARY KEY (conversation_id, seq)
);
"""


def state_dir() -> Path:
    """Where conversations are kept (not created until something is saved):
    ``$CODEXAPI_STATE_DIR``, else ``$XDG_DATA_HOME/codexapi``, else
    ``~/.local/share/codexapi``."""
    override = os.environ.get(STATE_ENV)
    if override:
        return Path(override)
    data = os.environ.get("XDG_DATA_HOME")
    base = Path(data) if data else Path.home() / ".local" / "share"
    return base / "codexapi"


@attrs.frozen
class TurnRecord:
    """One finished turn as stored: its items (the user's message first) and, for listing and
    searching, the prompt and answer as text."""

    at: float
    model: str
    prompt: str
    answer: str
    items: list[dict[str, Any]]
    response_id: str | None = None


@attrs.frozen
class Summary:
    """A conversation as ``codexapi logs`` lists it."""

    id: str
    model: str
    wire: str
    base_url: str
    provider: str | None
    created: float
    updated: float
    turns: int
    first_prompt: str


@attrs.frozen
class Hit:
    """A turn whose prompt or answer holds the text searched for."""

    conversation_id: str
    seq: int
    at: float
    model: str
    prompt: str
    answer: str


class Store:
    """The conversation database in ``root`` (default :func:`state_dir`)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root if root is not None else state_dir()
        self.path = self.root / DB_NAME

    @contextlib.contextmanager
    def connect(self, create: bool = True) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction (committed at the end, rolled back on an error).
        Without ``create``, a database that is not there yet is an empty one."""
        # Reading creates nothing, unless there are JSON files of an earlier version to import.
        if not (create or self.path.exists() or (self.root / "conversations").is_dir()):
            target = ":memory:"
        else:
            target = str(self.path)
        try:
            if target != ":memory:":
                self.root.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(target, timeout=BUSY_TIMEOUT)
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from None
        try:
            with db:
                if db.execute("PRAGMA user_version").fetchone()[0] < _SCHEMA_VERSION:
                    # One transaction: executescript runs each statement in its own otherwise,
                    # and each commit waits for the disk (~80 ms on a first chat).
                    db.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version = "
                                     f"{_SCHEMA_VERSION}; COMMIT;")
                    if target != ":memory:":
                        _migrate_json(db, self.root)
                yield db
        except sqlite3.Error as exc:
            raise self._error(exc) from None
        finally:
            db.close()

    def _error(self, exc: BaseException) -> ConfigError:
        why = getattr(exc, "strerror", None) or str(exc)
        if self.root.exists() and not self.root.is_dir():
            why = "it is not a directory"
        return ConfigError(f"cannot save the conversation in {self.root} ({DB_NAME}): {why} "
                           f"(set {STATE_ENV} to another directory)")

    # --- conversations --------------------------------------------------------------------

    def save(self, row: dict[str, Any], turns: Sequence[TurnRecord],
             secrets: Iterable[str] = ()) -> None:
        """Write a conversation's row and its new ``turns``, scrubbed of ``secrets``."""
        known = list(secrets)
        now = time.time()
        clean = dict(row)
        for key in ("model", "instructions", "wire", "provider", "last_response_id"):
            if isinstance(clean.get(key), str):
                clean[key] = scrub_text(clean[key], known)
        clean["base_url"] = scrub_text(redact_url(clean["base_url"]), known)
        with self.connect() as db:
            db.execute(
                "INSERT INTO conversations (id, model, instructions, base_url, wire, provider, "
                "embedded, store, last_response_id, created, updated) VALUES (:id, :model, "
                ":instructions, :base_url, :wire, :provider, :embedded, :store, "
                ":last_response_id, :created, :updated) ON CONFLICT (id) DO UPDATE SET "
                "model = :model, instructions = :instructions, base_url = :base_url, wire = "
                ":wire, provider = :provider, embedded = :embedded, store = :store, "
                "last_response_id = :last_response_id, updated = :updated",
                {**clean, "embedded": int(bool(clean["embedded"])),
                 "store": int(bool(clean["store"])), "updated": now})
            seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM turns WHERE conversation_id = ?",
                             (row["id"],)).fetchone()[0]
            for turn in turns:
                seq += 1
                db.execute(
                    "INSERT INTO turns (conversation_id, seq, at, model, prompt, answer, items, "
                    "response_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (row["id"], seq, turn.at, scrub_text(turn.model, known),
                     scrub_text(turn.prompt, known), scrub_text(turn.answer, known),
                     scrub_text(json.dumps(turn.items, ensure_ascii=False), known),
                     turn.response_id))

    def load(self, conversation_id: str) -> tuple[dict[str, Any], list[TurnRecord]]:
        """A conversation's row and its turns, in order; ConfigError when there is none."""
        with self.connect(create=False) as db:
            db.row_factory = sqlite3.Row
            row = db.execute("SELECT * FROM conversations WHERE id = ?",
                             (conversation_id,)).fetchone()
            if row is None:
                raise ConfigError(f"no saved conversation {conversation_id!r} in {self.path} "
                                  "('codexapi logs' lists them)")
            turns = [_turn(t) for t in db.execute(
                "SELECT * FROM turns WHERE conversation_id = ? ORDER BY seq",
                (conversation_id,))]
        data = dict(row)
        data["embedded"], data["store"] = bool(data["embedded"]), bool(data["store"])
        del data["updated"]
        return data, turns

    def last_id(self) -> str:
        """The id of the conversation used last (what ``-c`` continues)."""
        with self.connect(create=False) as db:
            row = db.execute("SELECT id FROM conversations ORDER BY updated DESC, rowid DESC "
                             "LIMIT 1").fetchone()
        if row is None:
            raise ConfigError(f"no conversation to continue yet (none saved in {self.root})")
        return str(row[0])

    def recent(self, limit: int) -> list[Summary]:
        """The conversations used last, newest first."""
        with self.connect(create=False) as db:
            rows = db.execute(
                "SELECT c.id, c.model, c.wire, c.base_url, c.provider, c.created, c.updated, "
                "(SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id), "
                "COALESCE((SELECT prompt FROM turns t WHERE t.conversation_id = c.id "
                "ORDER BY seq LIMIT 1), '') FROM conversations c "
                "ORDER BY c.updated DESC, c.rowid DESC LIMIT ?", (limit,)).fetchall()
        return [Summary(*row) for row in rows]

    def search(self, text: str, limit: int) -> list[Hit]:
        """Turns whose prompt or answer contains ``text`` (case-insensitive for ASCII),
        newest first."""
        pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with self.connect(create=False) as db:
            rows = db.execute(
                "SELECT conversation_id, seq, at, model, prompt, answer FROM turns WHERE "
                "prompt LIKE ?1 ESCAPE '\\' OR answer LIKE ?1 ESCAPE '\\' "
                "ORDER BY at DESC, rowid DESC LIMIT ?2", (pattern, limit)).fetchall()
        return [Hit(*row) for row in rows]

    def delete(self, conversation_id: str) -> bool:
        """Remove a conversation and its turns; False when there was none."""
        with self.connect(create=False) as db:
            gone = db.execute("DELETE FROM conversations WHERE id = ?",
                              (conversation_id,)).rowcount
            db.execute("DELETE FROM turns WHERE conversation_id = ?", (conversation_id,))
        return bool(gone)


def _turn(row: sqlite3.Row) -> TurnRecord:
    try:
        items = json.loads(row["items"])
    except ValueError:
        items = []
    return TurnRecord(row["at"], row["model"], row["prompt"], row["answer"],
                      items if isinstance(items, list) else [], row["response_id"])


# --- the text of a turn ---------------------------------------------------------------------


def text_of(item: Any) -> str:
    """The text of a message item (its text parts joined; other parts named in brackets)."""
    content = item.get("content") if isinstance(item, dict) else None
    if isinstance(content, str):
        return content
    out: list[str] = []
    for part in content if isinstance(content, list) else []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            out.append(part["text"])
        elif isinstance(part.get("refusal"), str):
            out.append(part["refusal"])
        elif part.get("type") == "input_image":
            out.append("[image]")
        elif part.get("type") == "input_file":
            out.append(f"[file {part.get('filename') or ''}]".replace(" ]", "]"))
    return "\n".join(out)


def answer_of(items: Sequence[dict[str, Any]]) -> str:
    """What the model said in a turn: its assistant messages' text."""
    return "\n".join(text_of(i) for i in items
                     if i.get("type", "message") == "message" and i.get("role") == "assistant")


def turns_of(items: Sequence[dict[str, Any]], at: float, model: str) -> list[TurnRecord]:
    """A history of items cut into turns, each starting at a user message (for the JSON
    files of earlier versions, which kept the items alone)."""
    turns: list[list[dict[str, Any]]] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        if item.get("role") == "user" or not turns:
            turns.append([])
        turns[-1].append(item)
    return [TurnRecord(at, model, text_of(t[0]) if t[0].get("role") == "user" else "",
                       answer_of(t), t) for t in turns]


def _migrate_json(db: sqlite3.Connection, root: Path) -> None:
    """Import ``conversations/*.json`` and ``last`` from earlier versions, once."""
    folder = root / "conversations"
    if not folder.is_dir():
        return
    files = sorted(folder.glob("conv_*.json"), key=lambda p: p.stat().st_mtime)
    try:
        last = (root / "last").read_text(encoding="utf-8").strip()
    except OSError:
        last = ""
    newest = 0.0
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
            updated = file.stat().st_mtime
            row = {"id": str(data["id"]), "model": str(data["model"]),
                   "instructions": str(data.get("instructions") or ""),
                   "base_url": redact_url(str(data.get("base_url") or "")),
                   "wire": str(data.get("wire") or "responses"),
                   "store": int(bool(data.get("store"))),
                   "last_response_id": data.get("last_response_id"),
                   "created": float(data.get("created") or updated), "updated": updated}
            items = data.get("items") or []
        except (OSError, ValueError, KeyError, TypeError):
            continue  # left in the moved folder for the user to look at
        newest = max(newest, updated)
        db.execute("INSERT OR IGNORE INTO conversations (id, model, instructions, base_url, "
                   "wire, store, last_response_id, created, updated) VALUES (:id, :model, "
                   ":instructions, :base_url, :wire, :store, :last_response_id, :created, "
                   ":updated)", row)
        for seq, turn in enumerate(turns_of(items, updated, row["model"]), 1):
            db.execute("INSERT OR IGNORE INTO turns (conversation_id, seq, at, model, prompt, "
                       "answer, items, response_id) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                       (row["id"], seq, turn.at, turn.model, turn.prompt, turn.answer,
                        json.dumps(turn.items, ensure_ascii=False)))
    if last:
        # `-c` goes on with the conversation `last` named, whatever the files' times say.
        db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (newest + 0.001, last))
    with contextlib.suppress(OSError):
        folder.rename(root / "conversations.json-migrated")
        (root / "last").unlink()


__all__ = ["DB_NAME", "STATE_ENV", "Hit", "Store", "Summary", "TurnRecord", "answer_of",
           "state_dir", "text_of", "turns_of"]
