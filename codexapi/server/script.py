"""User scripts for the scripted model: ``codexapi serve --script FILE`` and
``EmbeddedServer(script=PATH_OR_DICT)``.

A script is a mapping (YAML or JSON) with ``rules``, tried in order, first match wins, and
``unmatched``: what answers a request no rule matches (``scripted``, the default: the scripted
model; ``error``: a 400 naming the request's last user text and the rules it missed)::

    rules:
      - match: {input: "weather in (\\w+)"}
        reply: {tool_calls: [{name: get_weather, arguments: {city: "$1"}}]}
      - match: {tool_output: "sunny"}
        reply: {text: "It is sunny.", reasoning: "The tool said so."}
    unmatched: scripted

``match`` (every key given must hold; no ``match`` matches everything):
``input`` a regex searched in the last user text; ``tool_output`` a regex searched in the tool
outputs the request ends with; ``model`` a regex searched in the model name; ``header`` a
mapping of header name to regex; ``turn`` the request's turn in its conversation (1 for the
first model call, 2 after one earlier response, ...), a number or a list of them. A request
ending with tool outputs (the model's next step in a tool loop) is matched by an ``input``
rule only when that rule also tests ``tool_output``: a rule that calls a tool does not call
it again when the output comes back.

``reply``: ``text`` (streamed as deltas), ``tool_calls`` (``{name, arguments}`` function calls,
``arguments`` a mapping; or ``{name, input, custom: true}`` for a freeform tool),
``reasoning``, ``error`` (``{status, type, code, message, ...}``: the answer is that HTTP
status with the error object, extra keys included; a ``usage_limit_reached`` error given only
``resets_in_seconds`` also gets ``resets_at``), ``fault`` (a fault plan acting on this
answer), ``delay`` (seconds before the response head), ``usage`` (``input_tokens``,
``output_tokens``, ``cached_tokens``, ``reasoning_tokens``). A reply with none of text,
tool_calls, reasoning or error answers as the scripted model would, with its delay, fault and
usage. ``$1``, ``$2``, ... in reply strings are the groups of ``input``, then of
``tool_output``; ``$$`` is a dollar sign. ``times: N`` answers N requests, then the rule is
spent.

A script that does not read as this is a :class:`ScriptError` (a ConfigError) in one line
naming the file, the rule and the problem. JSON always works; YAML needs PyYAML
(``pip install 'codexapi[serve]'``).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..errors import ConfigError
from .faults import Fault, FaultSpecError, parse
from .model import ToolCall, Turn
from .transcript import last_user_text, output_text, trailing_outputs, turn_number

#: The keys each part of a script may have.
TOP_KEYS = ("rules", "unmatched")
RULE_KEYS = ("match", "reply", "times")
MATCH_KEYS = ("input", "tool_output", "model", "header", "turn")
REPLY_KEYS = ("text", "tool_calls", "reasoning", "error", "fault", "delay", "usage")
USAGE_KEYS = ("input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens")
UNMATCHED = ("scripted", "error")
#: The longest ``delay`` a reply may ask for, in seconds.
MAX_DELAY = 3600.0
_GROUP = re.compile(r"\$(\$|\d+)")


class ScriptError(ConfigError):
    """A script that does not load: the message names the file, the rule and the problem."""


class _Bad(Exception):
    """A problem found while reading one part of a script (where, why)."""

    def __init__(self, where: str, why: str) -> None:
        super().__init__(f"{where}: {why}" if where else why)


@attrs.frozen
class Match:
    input: re.Pattern[str] | None = None
    tool_output: re.Pattern[str] | None = None
    model: re.Pattern[str] | None = None
    header: tuple[tuple[str, re.Pattern[str]], ...] = ()
    turn: frozenset[int] | None = None

    def describe(self) -> str:
        parts = [f"{key} /{pattern.pattern}/" for key in ("input", "tool_output", "model")
                 if (pattern := getattr(self, key)) is not None]
        parts += [f"header {name} /{pattern.pattern}/" for name, pattern in self.header]
        if self.turn is not None:
            parts.append(f"turn {','.join(str(t) for t in sorted(self.turn))}")
        return ", ".join(parts) or "anything"


@attrs.frozen
class ScriptedCall:
    name: str
    arguments: Any = None  # a mapping (function) or text (custom)
    custom: bool = False


@attrs.frozen
class Reply:
    text: str | None = None
    tool_calls: tuple[ScriptedCall, ...] = ()
    reasoning: str | None = None
    error: Mapping[str, Any] | None = None
    fault: tuple[Fault, ...] = ()
    delay: float = 0.0
    usage: Mapping[str, int] | None = None

    @property
    def speaks(self) -> bool:
        """Whether the reply says something itself (else the scripted model speaks)."""
        return (self.text is not None or bool(self.tool_calls) or self.reasoning is not None
                or self.error is not None)


@attrs.define
class Rule:
    number: int
    match: Match
    reply: Reply
    times: int | None = None
    used: int = 0


@attrs.frozen
class Request:
    """What rules look at: the conversation (earlier turns included), model and headers."""

    items: Sequence[Mapping[str, Any]]
    model: str = ""
    headers: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Answer:
    """What a script says to one request. ``turn`` is None when the scripted model answers
    (``unmatched: scripted``, or a reply that only sets delay, fault or usage)."""

    rule: int | None = None
    turn: Turn | None = None
    #: (status, body, headers) of an error answer.
    error: tuple[int, dict[str, Any], dict[str, str]] | None = None
    fault: tuple[Fault, ...] = ()
    delay: float = 0.0
    usage: Mapping[str, int] | None = None


class Script:
    """Loaded rules; :meth:`answer` is thread-safe (``times`` are counted under a lock)."""

    def __init__(self, rules: Sequence[Rule], unmatched: str = "scripted",
                 source: str = "<script>") -> None:
        self.rules = list(rules)
        self.unmatched = unmatched
        self.source = source
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Script({self.source!r}, {len(self.rules)} rules, unmatched={self.unmatched!r})"

    @classmethod
    def load(cls, script: str | os.PathLike[str] | Mapping[str, Any] | Script) -> Script:
        """A script from a file path, or the same structure as a mapping."""
        if isinstance(script, Script):
            return script
        if isinstance(script, Mapping):
            return cls.parse(script, "<script>")
        path = Path(script)
        return cls.parse(_read(path), str(path))

    @classmethod
    def parse(cls, data: Any, source: str) -> Script:
        try:
            return cls._parse(data, source)
        except _Bad as exc:
            raise ScriptError(f"{source}: {exc}") from None

    @classmethod
    def _parse(cls, data: Any, source: str) -> Script:
        if not isinstance(data, Mapping):
            raise _Bad("", "a script is a mapping with `rules` (and `unmatched`), not a "
                       f"{_kind(data)}")
        _known(data, TOP_KEYS, "")
        unmatched = data.get("unmatched", "scripted")
        if unmatched not in UNMATCHED:
            raise _Bad("unmatched", f"{unmatched!r} is not one of {', '.join(UNMATCHED)}")
        raw = data.get("rules")
        if not isinstance(raw, list):
            raise _Bad("", "`rules` must be a list of rules")
        rules = [_rule(entry, number) for number, entry in enumerate(raw, start=1)]
        return cls(rules, str(unmatched), source)

    def answer(self, request: Request) -> Answer | None:
        """The answer of the first rule matching ``request`` (a rule with ``times`` left
        uses one), or None when the scripted model answers. ``unmatched: error`` answers an
        unmatched request with a 400 ``script_unmatched``."""
        view = _View(request)
        with self._lock:
            for rule in self.rules:
                if rule.times is not None and rule.used >= rule.times:
                    continue
                groups = view.match(rule.match)
                if groups is None:
                    continue
                rule.used += 1
                return _answer(rule, groups, view)
            if self.unmatched == "scripted":
                return None
            return Answer(error=(400, {"error": {
                "message": self._missed(view), "type": "invalid_request_error",
                "param": None, "code": "script_unmatched"}}, {}))

    def _missed(self, view: _View) -> str:
        rules = "; ".join(f"rule {r.number} ({r.match.describe()}"
                          + (", spent" if r.times is not None and r.used >= r.times else "")
                          + ")" for r in self.rules) or "none"
        return (f"no rule of {self.source} matched the request (last user text "
                f"{_short(view.prompt)!r}, turn {view.turn}, model {view.request.model!r}); "
                f"rules: {rules}")


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


class _View:
    """One request as rules see it, computed once."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.prompt = last_user_text(request.items)
        self.outputs = [output_text(o) for o in trailing_outputs(request.items)]
        self.turn = turn_number(request.items)
        self.headers = {k.lower(): v for k, v in request.headers.items()}

    def match(self, m: Match) -> list[str] | None:
        """The groups (``input``'s, then ``tool_output``'s) when ``m`` holds, else None."""
        if self.outputs and m.input is not None and m.tool_output is None:
            return None  # see the module docstring: a tool call is not repeated
        groups: list[str] = []
        if m.input is not None:
            found = m.input.search(self.prompt)
            if found is None:
                return None
            groups += [g or "" for g in found.groups()]
        if m.tool_output is not None:
            hit = next((f for o in self.outputs if (f := m.tool_output.search(o))), None)
            if hit is None:
                return None
            groups += [g or "" for g in hit.groups()]
        if m.model is not None and not m.model.search(self.request.model):
            return None
        for name, pattern in m.header:
            if not pattern.search(self.headers.get(name, "")):
                return None
        if m.turn is not None and self.turn not in m.turn:
            return None
        return groups


def _fill(value: Any, groups: Sequence[str]) -> Any:
    """``value`` with ``$N`` replaced by group N in every string inside it."""
    if isinstance(value, str):
        def group(found: re.Match[str]) -> str:
            token = found.group(1)
            if token == "$":
                return "$"
            index = int(token) - 1
            return groups[index] if 0 <= index < len(groups) else ""
        return _GROUP.sub(group, value)
    if isinstance(value, Mapping):
        return {k: _fill(v, groups) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, groups) for v in value]
    return value


def _answer(rule: Rule, groups: list[str], view: _View) -> Answer:
    reply = rule.reply
    common: dict[str, Any] = {"rule": rule.number, "fault": reply.fault,
                              "delay": reply.delay, "usage": reply.usage}
    if reply.error is not None:
        return Answer(error=_error(_fill(dict(reply.error), groups)), **common)
    if not reply.speaks:
        return Answer(**common)
    calls = []
    for index, call in enumerate(reply.tool_calls):
        seed = f"{rule.number}:{view.turn}:{index}:{view.prompt}"
        call_id = f"call_{zlib.crc32(seed.encode()):08x}"
        arguments = _fill(call.arguments, groups)
        if call.custom:
            calls.append(ToolCall(call.name, str(arguments), call_id, kind="custom"))
        else:
            calls.append(ToolCall(call.name, json.dumps(arguments), call_id))
    turn = Turn(text=_fill(reply.text or "", groups),
                reasoning=_fill(reply.reasoning or "", groups), tool_calls=tuple(calls),
                usage=reply.usage)
    return Answer(turn=turn, **common)


def _error(error: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    status = int(error.pop("status"))
    error.setdefault("type", "invalid_request_error")
    error.setdefault("code", None)
    error.setdefault("param", None)
    error.setdefault("message", f"Scripted {status} error.")
    headers: dict[str, str] = {}
    if error["type"] == "usage_limit_reached" and "resets_at" not in error \
            and isinstance(error.get("resets_in_seconds"), int):
        # Codex reads `resets_at`; the API sends both.
        error["resets_at"] = int(time.time()) + error["resets_in_seconds"]
    return status, {"error": error}, headers


# -- reading and checking ---------------------------------------------------------------------


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScriptError(f"{path}: no such script file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScriptError(f"{path}: cannot read the script: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    if path.suffix.lower() == ".json":
        return _json(text, path)
    try:
        import yaml
    except ImportError:
        try:
            return json.loads(text)
        except ValueError:
            raise ScriptError(f"{path}: YAML scripts need PyYAML: pip install "
                              "'codexapi[serve]' (or write the script as JSON)") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ScriptError(f"{path}: {where}not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ScriptError(f"{path}: not valid YAML: {exc}") from None


def _json(text: str, path: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScriptError(f"{path}: line {exc.lineno}: not valid JSON: {exc.msg}") from None


def _kind(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean", int: "number",
            float: "number", type(None): "null"}.get(type(value), type(value).__name__)


def _known(data: Mapping[str, Any], keys: Sequence[str], where: str) -> None:
    for key in data:
        if key not in keys:
            raise _Bad(where, f"unknown key {key!r} (known: {', '.join(keys)})")


def _rule(entry: Any, number: int) -> Rule:
    where = f"rule {number}"
    if not isinstance(entry, Mapping):
        raise _Bad(where, f"a rule is a mapping with `match` and `reply`, not a {_kind(entry)}")
    _known(entry, RULE_KEYS, where)
    if "reply" not in entry:
        raise _Bad(where, "has no `reply`")
    times = entry.get("times")
    if times is not None and (not isinstance(times, int) or isinstance(times, bool)
                              or times < 1):
        raise _Bad(f"{where}: times", f"must be a whole number of at least 1, not {times!r}")
    match = entry.get("match") or {}
    return Rule(number, _match(match, f"{where}: match"),
                _reply(entry["reply"], f"{where}: reply"), times)


def _regex(value: Any, where: str) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise _Bad(where, f"must be a regular expression (a string), not a {_kind(value)}")
    try:
        return re.compile(value)
    except re.error as exc:
        raise _Bad(where, f"invalid regular expression {value!r}: {exc}") from None


def _match(data: Any, where: str) -> Match:
    if not isinstance(data, Mapping):
        raise _Bad(where, f"must be a mapping, not a {_kind(data)}")
    _known(data, MATCH_KEYS, where)
    fields: dict[str, Any] = {key: _regex(data[key], f"{where}.{key}")
                              for key in ("input", "tool_output", "model") if key in data}
    if "header" in data:
        headers = data["header"]
        if not isinstance(headers, Mapping) or not headers:
            raise _Bad(f"{where}.header", "must be a mapping of header name to regex")
        fields["header"] = tuple((str(name).lower(), _regex(p, f"{where}.header.{name}"))
                                 for name, p in headers.items())
    if "turn" in data:
        turns = data["turn"] if isinstance(data["turn"], list) else [data["turn"]]
        if not turns or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 1
                                for t in turns):
            raise _Bad(f"{where}.turn", "must be a turn number (1, 2, ...) or a list of them, "
                       f"not {data['turn']!r}")
        fields["turn"] = frozenset(turns)
    return Match(**fields)


def _text(data: Mapping[str, Any], key: str, where: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise _Bad(f"{where}.{key}", f"must be a string, not a {_kind(value)}")
    return value


def _reply(data: Any, where: str) -> Reply:
    if not isinstance(data, Mapping):
        raise _Bad(where, f"must be a mapping, not a {_kind(data)}")
    _known(data, REPLY_KEYS, where)
    fields: dict[str, Any] = {"text": _text(data, "text", where),
                              "reasoning": _text(data, "reasoning", where)}
    if "tool_calls" in data:
        calls = data["tool_calls"]
        if not isinstance(calls, list) or not calls:
            raise _Bad(f"{where}.tool_calls", "must be a non-empty list of calls")
        fields["tool_calls"] = tuple(_call(c, f"{where}.tool_calls[{i}]")
                                     for i, c in enumerate(calls))
    if "error" in data:
        fields["error"] = _error_spec(data["error"], f"{where}.error")
    if "fault" in data:
        plan = data["fault"]
        if not isinstance(plan, str) or not plan.strip():
            raise _Bad(f"{where}.fault", "must be a fault plan such as \"drop@3\" or \"429:2\"")
        try:
            fields["fault"] = parse(plan)
        except FaultSpecError as exc:
            raise _Bad(f"{where}.fault", str(exc)) from None
    if "delay" in data:
        delay = data["delay"]
        if not isinstance(delay, int | float) or isinstance(delay, bool) \
                or not 0 <= delay <= MAX_DELAY:
            raise _Bad(f"{where}.delay", f"must be seconds within 0..{MAX_DELAY:g}, not "
                       f"{delay!r}")
        fields["delay"] = float(delay)
    if "usage" in data:
        fields["usage"] = _usage(data["usage"], f"{where}.usage")
    return Reply(**fields)


def _call(data: Any, where: str) -> ScriptedCall:
    if not isinstance(data, Mapping):
        raise _Bad(where, f"must be a mapping with `name`, not a {_kind(data)}")
    _known(data, ("name", "arguments", "input", "custom"), where)
    name = data.get("name")
    if not isinstance(name, str) or not name:
        raise _Bad(where, "needs a `name` (the tool to call)")
    custom = data.get("custom", False)
    if not isinstance(custom, bool):
        raise _Bad(f"{where}.custom", "must be true or false")
    if custom:
        if "arguments" in data:
            raise _Bad(where, "a custom call takes `input` (its freeform text), not "
                       "`arguments`")
        value = data.get("input", "")
        if not isinstance(value, str):
            raise _Bad(f"{where}.input", f"must be a string, not a {_kind(value)}")
        return ScriptedCall(name, value, True)
    if "input" in data:
        raise _Bad(where, "`input` is for custom calls (add `custom: true`); a function call "
                   "takes `arguments`")
    arguments = data.get("arguments", {})
    if not isinstance(arguments, Mapping):
        raise _Bad(f"{where}.arguments", f"must be a mapping, not a {_kind(arguments)}")
    try:
        json.dumps(arguments)
    except (TypeError, ValueError) as exc:
        raise _Bad(f"{where}.arguments", f"must be JSON data: {exc}") from None
    return ScriptedCall(name, dict(arguments))


def _error_spec(data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise _Bad(where, f"must be a mapping with `status`, not a {_kind(data)}")
    status = data.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
        raise _Bad(f"{where}.status", f"must be an HTTP error status (400-599), not {status!r}")
    for key in ("type", "code", "message"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise _Bad(f"{where}.{key}", f"must be a string, not a {_kind(data[key])}")
    try:
        json.dumps(dict(data))
    except (TypeError, ValueError) as exc:
        raise _Bad(where, f"must be JSON data: {exc}") from None
    return dict(data)


def _usage(data: Any, where: str) -> Mapping[str, int]:
    if not isinstance(data, Mapping):
        raise _Bad(where, f"must be a mapping of token counts, not a {_kind(data)}")
    _known(data, USAGE_KEYS, where)
    for key, value in data.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _Bad(f"{where}.{key}", f"must be a whole number of tokens, not {value!r}")
    return dict(data)
