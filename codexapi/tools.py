"""Function tools from plain Python functions, and the loop that runs them.

:meth:`Tool.from_function` reads a function's name, docstring and annotations into a function
tool (its parameters' JSON schema by :func:`codexapi.schema.parameters_schema`, the rules
structured output follows). :func:`run_tools` (``Client.run_tools``) sends a turn, calls each
function the model asks for, sends the outputs back, and stops when the model answers without
calls: each turn is an ordinary call of the client (the same retries, observers and
``deadline=``, on every wire). As in simonw's ``llm``, an exception in a tool does not end the
run: it becomes that call's output text, so the model can react, and is logged.
"""

from __future__ import annotations

import inspect
import logging
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .convert import dumps, get_converter, structure
from .deadline import Deadline
from .errors import ConfigError, ToolArgumentsError, ToolLoopLimit
from .events import Event
from .items import FunctionCall, FunctionCallOutput, InputItem, Item
from .models import ResponsesRequest
from .redact import scrub_text
from .schema import Param, parameters_schema
from .stream import StreamResult

if TYPE_CHECKING:
    from .client import Client, Timeout
    from .session import SessionContext

log = logging.getLogger("codexapi")

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY,)
_VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


@attrs.frozen
class Tool:
    """A function tool: what the model is told (``name``, ``description``, ``schema`` of its
    parameters) and, when built from one, the Python function that runs it."""

    name: str
    #: The parameters' JSON schema (an object schema).
    schema: Mapping[str, Any]
    description: str | None = None
    function: Callable[..., Any] | None = attrs.field(default=None, eq=False, repr=False)
    #: Ask the API to hold the model's arguments to the schema exactly (``strict``).
    strict: bool = False
    _params: tuple[tuple[str, Any, bool, bool], ...] = attrs.field(
        default=(), eq=False, repr=False, alias="params")

    @classmethod
    def from_function(cls, fn: Callable[..., Any], *, name: str | None = None,
                      description: str | None = None, strict: bool = False) -> Tool:
        """A tool calling ``fn``: named after it, described by its docstring, its parameters
        from their annotations (``str``, ``int``, ``float``, ``bool``, lists, ``dict[str,
        X]``, enums, ``Literal``, ``X | None``, attrs classes, dataclasses and pydantic
        models; ``Annotated[X, "text"]`` describes a parameter). A parameter with a default
        may be left out by the model (with ``strict``, every one is required). A parameter
        without an annotation, ``*args`` or ``**kwargs`` is a :class:`ConfigError`."""
        if not callable(fn):
            raise ConfigError(f"Tool.from_function needs a function, got {fn!r}")
        tool_name = name or getattr(fn, "__name__", "")
        if not tool_name or tool_name == "<lambda>":
            raise ConfigError(f"{fn!r} has no usable name: pass name=")
        try:
            signature = inspect.signature(fn)
            hints = typing.get_type_hints(fn, include_extras=True)
        except (TypeError, ValueError, NameError) as exc:
            raise ConfigError(f"cannot read the parameters of {tool_name}: {exc}") from None
        params: list[Param] = []
        kept: list[tuple[str, Any, bool, bool]] = []
        for p in signature.parameters.values():
            if p.kind in _VARIADIC:
                raise ConfigError(f"{tool_name}: a tool cannot take *{p.name} or **{p.name}: "
                                  "name each parameter")
            if p.name not in hints:
                raise ConfigError(f"{tool_name}: annotate parameter {p.name!r} with its type "
                                  "(the model is told the types)")
            tp, about = _annotated(hints[p.name])
            has_default = p.default is not inspect.Parameter.empty
            params.append((p.name, tp, about, has_default))
            kept.append((p.name, tp, has_default, p.kind in _POSITIONAL))
        schema = parameters_schema(params, strict=strict, where=tool_name)
        doc = description if description is not None else inspect.getdoc(fn)
        return cls(tool_name, schema, doc or None, fn, strict, params=tuple(kept))

    def to_json(self) -> dict[str, Any]:
        """The tool's entry in a request's ``tools`` (Responses form; the Chat wire wraps it)."""
        entry: dict[str, Any] = {"type": "function", "name": self.name}
        if self.description:
            entry["description"] = self.description
        # Always said: the Responses API holds a function tool to strict mode unless told.
        entry.update(parameters=dict(self.schema), strict=self.strict)
        return entry

    def arguments(self, call: FunctionCall) -> tuple[list[Any], dict[str, Any]]:
        """The call's arguments structured into the function's parameter types, as positional
        and keyword arguments. Raises :class:`ToolArgumentsError` naming what does not fit."""
        data = call.parsed_arguments()
        if not isinstance(data, dict):
            raise ToolArgumentsError(call, "not a JSON object")
        unknown = sorted(set(data) - {p[0] for p in self._params})
        if unknown:
            raise ToolArgumentsError(call, f"not all known (unexpected: {', '.join(unknown)})")
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for pname, tp, has_default, positional in self._params:
            if pname not in data:
                if has_default:
                    continue
                raise ToolArgumentsError(call, f"incomplete (missing {pname!r})")
            value = structure(data[pname], tp, _naming(call, pname))
            if positional:
                args.append(value)
            else:
                kwargs[pname] = value
        return args, kwargs

    def run(self, call: FunctionCall) -> str:
        """Call the function with the call's arguments; its result as the output text (a
        string as it is, anything else as JSON). Raises what the function raises."""
        if self.function is None:
            raise ConfigError(f"tool {self.name!r} has no function to run")
        args, kwargs = self.arguments(call)
        return output_text(self.function(*args, **kwargs))


def _naming(call: FunctionCall, name: str) -> Callable[[str], ToolArgumentsError]:
    """The error for argument ``name`` of ``call`` not fitting its type."""
    return lambda detail: ToolArgumentsError(call, f"not valid for {name!r}: {detail}")


def _annotated(tp: Any) -> tuple[Any, str | None]:
    """``Annotated[X, "text", ...]`` -> (X, "text"); anything else -> (tp, None)."""
    if typing.get_origin(tp) is typing.Annotated:
        base, *extras = typing.get_args(tp)
        about = next((e for e in extras if isinstance(e, str)), None)
        return base, about
    return tp, None


def output_text(value: Any) -> str:
    """A tool's result as the text sent back: a string as it is, anything else as JSON
    (attrs classes, dataclasses and pydantic models by the one converter)."""
    if isinstance(value, str):
        return value
    try:
        return dumps(get_converter().unstructure(value)).decode()
    except TypeError:
        return str(value)


def as_tool(tool: Tool | Callable[..., Any]) -> Tool:
    """A :class:`Tool` as it is; a plain function through :meth:`Tool.from_function`."""
    return tool if isinstance(tool, Tool) else Tool.from_function(tool)


@attrs.frozen
class ToolRun:
    """What :func:`run_tools` did: the last turn's result, every call with its output text,
    and the input list to continue the conversation from."""

    #: The last turn's :class:`StreamResult` (the answer, when the run finished).
    result: StreamResult
    #: Each function call, in order, with the output text sent back for it.
    calls: list[tuple[FunctionCall, str]]
    #: The request's input, then every turn's output items and tool outputs: send it with
    #: the next user message to go on.
    input: list[InputItem]
    #: How many turns (model calls) the run took.
    turns: int = 1

    @property
    def text(self) -> str:
        """The last turn's text."""
        return self.result.text


def replayable(item: Item) -> dict[str, Any] | None:
    """An output item as input for the next turn, or None when it cannot be sent back. Item
    ids are dropped (they name items of stored responses, which a server with ``store``
    off does not have; the crate drops them too), and a reasoning item without its
    encrypted content cannot be replayed."""
    data = item.to_dict()
    if data.get("type") == "reasoning" and not data.get("encrypted_content"):
        return None
    data.pop("id", None)
    return data


def run_tools(client: Client, request: ResponsesRequest,
              tools: Sequence[Tool | Callable[..., Any]], max_turns: int = 8, *,
              on_event: Callable[[Event], None] | None = None,
              on_output: Callable[[FunctionCall, str], None] | None = None,
              secrets: Callable[[], list[str]] | None = None,
              conversation_id: str | None = None, session_id: str | None = None,
              subagent: str | None = None, headers: Mapping[str, str] | None = None,
              timeout: Timeout = None, deadline: float | None = None,
              session: SessionContext | None = None) -> ToolRun:
    """Run ``request`` with ``tools`` until the model answers without calling one; see
    :meth:`Client.run_tools <codexapi.Client.run_tools>`."""
    if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
        raise ConfigError(f"max_turns must be a positive int, got {max_turns!r}")
    by_name: dict[str, Tool] = {}
    for entry in tools:
        tool = as_tool(entry)
        if tool.name in by_name:
            raise ConfigError(f"two tools are named {tool.name!r}")
        by_name[tool.name] = tool
    until = Deadline.of(deadline)
    offered = list(request.tools or [])
    named = {t.get("name") for t in offered}
    offered += [t.to_json() for t in by_name.values() if t.name not in named]
    current = request.new(tools=offered)
    history: list[InputItem] = list(request.input)
    calls: list[tuple[FunctionCall, str]] = []
    turn = 0
    while True:
        turn += 1
        left = None
        if until is not None:
            left = until.remaining()
            if left <= 0:
                raise until.exceeded(doing=f"running tools, before turn {turn}")
        stream = client.stream(current, conversation_id, session_id, subagent, headers, timeout,
                               left, session)
        result = stream.collect(on_event)
        history.extend(d for d in map(replayable, result.items) if d is not None)
        pending = result.function_calls
        for call in pending:
            text = _call(by_name.get(call.name), call, secrets)
            calls.append((call, text))
            history.append(FunctionCallOutput(call_id=call.call_id, output=text))
            if on_output is not None:
                on_output(call, text)
        run = ToolRun(result, list(calls), list(history), turn)
        if not pending:
            return run
        if turn >= max_turns:
            raise ToolLoopLimit(f"the model was still calling tools after max_turns={max_turns} "
                                f"turns ({len(calls)} calls); the run so far is on .run", run)
        current = current.new(input=list(history))


def _call(tool: Tool | None, call: FunctionCall,
          secrets: Callable[[], list[str]] | None) -> str:
    """The output text of one call: the tool's result, or what went wrong, as ``llm`` does."""
    if tool is None:
        return f"Error: there is no tool named {call.name!r}"
    try:
        return tool.run(call)
    except Exception as exc:
        known = secrets() if secrets is not None else []
        text = scrub_text(f"Error: {type(exc).__name__}: {exc}", known)
        log.warning("tool %s (call %s) failed; the model is told: %s", call.name,
                    call.call_id, text)
        return text


__all__ = ["Tool", "ToolRun", "as_tool", "output_text", "replayable", "run_tools"]
