"""What a user's script (:mod:`.script`) does to one exchange, on every route the scripted
model serves: wait its ``delay``, apply its ``fault``, answer its ``error``, or hand back the
turn it says (None: the scripted model answers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .app import Exchange
from .model import Turn
from .script import Request


def script_turn(ex: Exchange, items: Sequence[Mapping[str, Any]], model: str,
                tokens: int) -> tuple[bool, Turn | None, Mapping[str, int] | None]:
    """(answered, turn, usage) for a model call whose conversation is ``items``: answered is
    True when the script's error or fault already answered the exchange; turn is the
    script's (None: the scripted model's); usage the counts the rule sets, if any."""
    script = ex.server.model.script
    if script is None:
        return False, None, None
    answer = script.answer(Request(items, model, ex.headers))
    if answer is None:
        return False, None, None
    if answer.delay and ex.server.faults.stopping.wait(answer.delay):
        return True, None, None  # the server is stopping
    if answer.fault and ex.server.faults.intercept(ex, answer.fault):
        return True, None, None
    if answer.error is not None:
        status, body, headers = answer.error
        ex.send_json(status, body, headers)
        return True, None, None
    turn = answer.turn
    if turn is not None:
        turn = attrs.evolve(turn, input_tokens=tokens)
    return False, turn, answer.usage
