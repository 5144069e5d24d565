"""How ``codexapi chat`` shows a stream: the answer on stdout as it arrives, everything else
(spinner, reasoning, tool calls, token usage) on stderr, so ``codexapi chat ... > file`` keeps
only the answer. With ``json_lines`` stdout gets one JSON event per line (NDJSON) instead.
"""

from __future__ import annotations

import os
import sys
import threading
from types import TracebackType
from typing import TextIO

from ..convert import dumps, event_to_json
from ..events import (
    Completed,
    Event,
    OutputItemDone,
    OutputTextDelta,
    ReasoningContentDelta,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    TokenUsage,
)
from ..threads import start_daemon

DIM = "\x1b[2m"
RESET = "\x1b[0m"
CLEAR_LINE = "\r\x1b[K"
SPINNER_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def use_color(stream: TextIO) -> bool:
    """ANSI styling only on a terminal, and never with ``NO_COLOR`` set (no-color.org)."""
    return _is_tty(stream) and not os.environ.get("NO_COLOR")


class Spinner:
    """A one-line spinner on a terminal, erased when stopped. Does nothing elsewhere."""

    def __init__(self, stream: TextIO, label: str = "waiting for the model",
                 interval: float = 0.08) -> None:
        self.stream = stream
        self.label = label
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        """Whether this spinner shows at all (its stream is a terminal)."""
        return _is_tty(self.stream)

    def set_label(self, label: str) -> None:
        """Change the text shown beside the spinner from the next frame on."""
        with self._lock:
            self.label = label

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self._thread = start_daemon(self._run, "codexapi-spinner")

    def _run(self) -> None:
        frame = 0
        while not self._stop.is_set():
            with self._lock:
                if self._stop.is_set():
                    return
                # Cleared each frame: a new label (a retry) may be shorter than the last.
                self.stream.write(f"{CLEAR_LINE}{SPINNER_FRAMES[frame % len(SPINNER_FRAMES)]} "
                                  f"{self.label}")
                self.stream.flush()
            frame += 1
            self._stop.wait(self.interval)

    def stop(self) -> None:
        """Stop and erase the spinner (idempotent)."""
        thread = self._thread
        if thread is None or self._stop.is_set():
            return
        with self._lock:
            self._stop.set()
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
        thread.join(timeout=1.0)


def format_usage(usage: TokenUsage) -> str:
    """``tokens: 12 in (3 cached), 34 out (5 reasoning), 46 total``."""
    text = f"tokens: {usage.input_tokens} in"
    if usage.cached_input_tokens:
        text += f" ({usage.cached_input_tokens} cached)"
    text += f", {usage.output_tokens} out"
    if usage.reasoning_output_tokens:
        text += f" ({usage.reasoning_output_tokens} reasoning)"
    return text + f", {usage.total_tokens} total"


def format_retry(delay: float, attempt: int, max_attempts: int, error: BaseException) -> str:
    """``retrying in 0.4 s, attempt 2/5: 503``: ``attempt`` is the try about to be made."""
    from ..errors import ApiError, CodexApiError

    if isinstance(error, ApiError):
        why = str(error.status)
    else:
        why = (error.message if isinstance(error, CodexApiError) else str(error)) or type(
            error).__name__
        why = " ".join(why.split())
        why = why if len(why) <= 80 else why[:79] + "…"
    shown = f"{delay:.1f}" if delay >= 0.1 or delay == 0 else f"{delay:.2f}"
    return f"retrying in {shown} s, attempt {attempt}/{max_attempts}: {why}"


def describe_tool_call(item: object) -> str | None:
    """One line for a tool-call output item, or None for other items."""
    kind = str(getattr(item, "type", "") or "")
    if not kind.endswith("_call"):
        return None
    name = getattr(item, "name", None) or kind
    args = getattr(item, "arguments", None)
    if args is None:
        args = getattr(item, "input", None)
    if args is None:
        action = getattr(item, "action", None)
        args = dumps(action).decode() if action is not None else ""
    call_id = getattr(item, "call_id", None)
    return f"tool call: {name}({args})" + (f" [{call_id}]" if call_id else "")


class ChatView:
    """Renders one turn. Use as a context manager around the request, so the spinner runs
    while the request is being sent and is erased whatever happens."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None, *,
                 json_lines: bool = False, reasoning: bool = True, usage: bool = True) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.json_lines = json_lines
        self.reasoning = reasoning
        self.usage = usage
        self.color = use_color(self.err)
        self.spinner = Spinner(self.err)
        self._text_open = False  # answer text written and not yet ended by a newline
        self._reasoning_open = False  # reasoning line(s) written on stderr, not yet ended
        self._summary_seen = False
        self._usage: TokenUsage | None = None
        self._completed = False

    #: The view whose turn is on the terminal now (one at a time: a command line has one
    #: terminal); the chat command's retry observer shows retries there.
    current: ChatView | None = None

    def retrying(self, label: str) -> None:
        """Show ``label`` (a retry about to happen) in place of the spinner's label."""
        self.spinner.set_label(label)

    @classmethod
    def show_retry(cls, label: str) -> None:
        """:meth:`retrying` on the current view, if a turn is on screen."""
        view = cls.current
        if view is not None:
            view.retrying(label)

    def __enter__(self) -> ChatView:
        ChatView.current = self
        self.spinner.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if ChatView.current is self:
            ChatView.current = None
        self.spinner.stop()
        self._end_reasoning()
        self._end_text()
        if exc is None and self.usage and self._completed:
            # Said even when missing (a Chat server without stream_options.include_usage):
            # --usage printing nothing reads as a bug.
            self._note(format_usage(self._usage) if self._usage is not None
                       else "tokens: not reported by the server")

    def _note(self, line: str) -> None:
        self.err.write(f"{DIM}{line}{RESET}\n" if self.color else f"{line}\n")
        self.err.flush()

    def _reason(self, delta: str) -> None:
        if not self.reasoning or not delta:
            return
        self.spinner.stop()
        self.err.write(f"{DIM}{delta}{RESET}" if self.color else delta)
        self.err.flush()
        self._reasoning_open = True

    def _end_text(self) -> None:
        # Notes go to stderr; close the answer's line first so the terminal shows them apart.
        if self._text_open:
            self.out.write("\n")
            self.out.flush()
            self._text_open = False

    def _end_reasoning(self) -> None:
        if self._reasoning_open:
            self.err.write("\n")
            self.err.flush()
            self._reasoning_open = False

    def show_output(self, call: object, output: str) -> None:
        """A tool's output (``chat --functions``), one dimmed line on stderr."""
        if self.json_lines:
            item = {"type": "function_call_output", "call_id": getattr(call, "call_id", None),
                    "output": output}
            self.out.write(dumps({"type": "tool_output", "item": item}).decode() + "\n")
            self.out.flush()
            return
        shown = " ".join(output.split())
        self._note(f"tool output: {shown if len(shown) <= 200 else shown[:199] + '…'}")

    def show(self, event: Event) -> None:
        """Render one event."""
        if isinstance(event, Completed):
            self._usage = event.token_usage
            self._completed = True
        if self.json_lines:
            if isinstance(event, OutputTextDelta | ReasoningSummaryDelta |
                          ReasoningContentDelta | OutputItemDone):
                self.spinner.stop()
            self.out.write(dumps(event_to_json(event)).decode() + "\n")
            self.out.flush()
            return
        if isinstance(event, OutputTextDelta):
            self.spinner.stop()
            self._end_reasoning()
            self.out.write(event.delta)
            self.out.flush()
            self._text_open = not event.delta.endswith("\n") if event.delta else self._text_open
        elif isinstance(event, ReasoningSummaryDelta):
            self._summary_seen = True
            self._reason(event.delta)
        elif isinstance(event, ReasoningSummaryPartAdded):
            if self._reasoning_open:
                self._reason("\n")
        elif isinstance(event, ReasoningContentDelta):
            # Raw reasoning repeats what a summary says: shown only when no summary came
            # (the Chat wire has raw reasoning only).
            if not self._summary_seen:
                self._reason(event.delta)
        elif isinstance(event, OutputItemDone):
            line = describe_tool_call(event.item)
            if line is not None:
                self.spinner.stop()
                self._end_reasoning()
                self._end_text()
                self._note(line)


__all__ = ["ChatView", "Spinner", "describe_tool_call", "format_retry", "format_usage",
           "use_color"]
