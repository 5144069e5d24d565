"""``codexapi logs``: the conversations ``codexapi chat`` saved, to list, read, search and
delete (as simonw's ``llm logs``)."""

from __future__ import annotations

import argparse
import json
import time
from contextlib import ExitStack
from typing import Any

import attrs

from ..errors import ConfigError
from .commands import command
from .store import Hit, Store, Summary, TurnRecord


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text!r}")
    return value


def _logs_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", nargs="?", metavar="ID",
                   help="show this conversation, every turn (default: list the recent ones)")
    p.add_argument("-q", "--query", metavar="TEXT",
                   help="list the turns whose prompt or answer contains TEXT")
    p.add_argument("-n", "--count", type=_positive, default=20, metavar="N",
                   help="list at most N conversations or turns")
    p.add_argument("--json", action="store_true", help="print JSON, for scripts")
    p.add_argument("--delete", action="store_true",
                   help="delete conversation ID and its turns")


@command("logs", "list, show, search or delete the conversations 'codexapi chat' saved")(
    _logs_args)
def cmd_logs(args: argparse.Namespace, stack: ExitStack) -> int:
    store = Store()
    if args.delete:
        if not args.id:
            raise ConfigError("--delete needs the ID of the conversation to delete")
        if not store.delete(args.id):
            raise ConfigError(f"no saved conversation {args.id!r} in {store.path}")
        print(f"deleted {args.id}")
        return 0
    if args.id:
        row, turns = store.load(args.id)
        _show(row, turns, args.json)
    elif args.query is not None:
        if not args.query.strip():
            raise ConfigError("-q needs some text to search for")
        _hits(store.search(args.query, args.count), args.json)
    else:
        _recent(store.recent(args.count), args.json)
    return 0


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _line(text: str, width: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"


def _recent(summaries: list[Summary], as_json: bool) -> None:
    if as_json:
        print(json.dumps([attrs.asdict(s) for s in summaries], indent=2, ensure_ascii=False))
        return
    for s in summaries:
        turns = f"{s.turns} turn" + ("" if s.turns == 1 else "s")
        print(f"{s.id}  {_when(s.updated)}  {s.model}  {turns}  {_line(s.first_prompt)}")


def _hits(hits: list[Hit], as_json: bool) -> None:
    if as_json:
        print(json.dumps([attrs.asdict(h) for h in hits], indent=2, ensure_ascii=False))
        return
    for h in hits:
        print(f"{h.conversation_id}  {_when(h.at)}  > {_line(h.prompt, 40)}  | "
              f"{_line(h.answer, 40)}")


def _show(row: dict[str, Any], turns: list[TurnRecord], as_json: bool) -> None:
    if as_json:
        print(json.dumps({**row, "turns": [attrs.asdict(t) for t in turns]}, indent=2,
                         ensure_ascii=False))
        return
    where = "the embedded server" if row["embedded"] else row["base_url"]
    if row["provider"]:
        where = f"provider {row['provider']} ({where})"
    print(f"{row['id']}: {row['model']} on {where}, wire {row['wire']}, "
          f"{len(turns)} turn{'' if len(turns) == 1 else 's'}")
    if row["instructions"]:
        print(f"instructions: {row['instructions']}")
    for turn in turns:
        print(f"\n[{_when(turn.at)}] > {turn.prompt}")
        for item in turn.items[1:]:
            if item.get("type") == "function_call":
                print(f"tool call: {item.get('name')}({item.get('arguments')})")
            elif item.get("type") == "function_call_output":
                print(f"tool output: {_line(str(item.get('output')), 200)}")
        print(turn.answer)


__all__ = ["cmd_logs"]
