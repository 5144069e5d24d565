"""Fault injection for the embedded server: make it fail the way real networks and the real
API fail, on demand, so retry, timeout and error paths can be tested offline.

A fault plan is a comma-separated list of terms ``NAME[xN][:ARG][@K]``:

``429`` / ``500`` / any 4xx-5xx status
    answer with that status and an OpenAI-style error body. ``ARG`` is the retry hint:
    ``2`` -> ``Retry-After: 2``; ``1500ms`` -> ``retry-after-ms: 1500``; ``msg1.5`` -> no
    header, "Please try again in 1.5s." in the message; ``date3`` -> ``Retry-After`` as an HTTP
    date 3 s ahead; ``none`` -> no hint. 429 defaults to ``Retry-After: 1``.
``reset``
    reset the connection (TCP RST) before any response byte.
``stallhead:T``
    wait ``T`` seconds before the response head (a client read timeout).
``drop@K``
    close the connection after ``K`` stream events (no chunked terminator).
``stall:T@K``
    after ``K`` events, send nothing for ``T`` seconds, then carry on.
``malformed@K``
    after ``K`` events, send one event whose data is not valid JSON.
``truncate``
    end the stream cleanly just before its completion (``response.completed``, or the Chat
    ``finish_reason`` chunk and ``[DONE]``).
``failed:CODE[=S]@K``
    after ``K`` events, report a failure and end: ``response.failed`` with ``error.code`` CODE
    on the Responses wire, an ``{"error": {...}}`` chunk on the Chat wire. For
    ``rate_limit_exceeded`` the message says "Please try again in S s" (default 1.5).
``ratelimits``
    add ``x-codex-*`` and ``x-ratelimit-*`` rate-limit headers to the stream's response.
``usage_limit[:S]``
    answer HTTP 429 with the body the Codex CLI reads as a ChatGPT plan's usage limit
    (``error.type: "usage_limit_reached"``, ``plan_type``, ``resets_at`` and
    ``resets_in_seconds``, S seconds ahead, default 3600) and ``x-codex-*`` headers saying
    the primary window is used up. No retry hint: the CLI stops after one request with its
    "You've hit your usage limit" message.
``quota:TYPE``
    answer HTTP 429 with one of the other bodies that end a turn at once, never retried:
    ``usage_not_included``, ``insufficient_quota``, ``billing_hard_limit_reached``,
    ``account_deactivated`` (and ``usage_limit_reached``, as above).

``K`` counts the stream's events (SSE messages, or WebSocket text frames) already sent: 2 by
default, 1 for ``malformed`` and ``failed``. ``xN`` limits a term to the first N requests that
carry the same plan and fault id; without it the term applies to every request. Terms are tried
in order and the first answering term wins, so ``429x1,500x1`` is one 429, then one 500, then
success.

Where a plan comes from, first found wins: the request body's ``client_metadata``
``{"x-codexapi-fault": PLAN}`` (per turn, also on a WebSocket, whose headers are the
connection's), the ``x-codexapi-fault`` request header, a model name ``fault:<plan>``, the
server's own plan (``EmbeddedServer(faults=...)``, ``codexapi serve --fault``); a script
rule's ``fault`` replaces them for the answers it gives. Counts are kept per (term, fault id),
the id being ``client_metadata["x-codexapi-fault-id"]`` or the ``x-codexapi-fault-id`` header
(else ``session-id``, ``session_id`` or ``thread-id``, as the Codex CLI sends them; else
none): concurrent tests that each send their own id never see each other's counts.

Faults act on a stream's events and on the small :class:`Connection` interface (answer with
an error, reset, send one message, drop), never on a socket: the same plan works on an SSE
body, on WebSocket frames, and on a background response's stream (``GET
/v1/responses/{id}?stream=true``), where ``drop@K`` cuts the delivery while the response keeps
generating. Over WebSocket a status fault is an ``{"type": "error", "status": ...}`` event and
``reset`` refuses the upgrade.
"""

from __future__ import annotations

import collections
import email.utils
import re
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

import attrs

from ..errors import ConfigError


class Connection(Protocol):
    """What faults need from the exchange they act on (an HTTP request, a WebSocket turn)."""

    @property
    def wire(self) -> str:
        """``"responses"`` or ``"chat"``: which failure events to make."""

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def body(self) -> Any: ...

    #: Set by :meth:`FaultInjector.intercept` when stream faults act on this exchange.
    stream_faults: StreamFaults | None

    def send_error(self, status: int, message: str, code: str | None = None,
                   err_type: str = "invalid_request_error",
                   headers: Mapping[str, str] | None = None) -> None: ...

    def send_json(self, status: int, obj: Any,
                  headers: Mapping[str, str] | None = None) -> None:
        """Answer with a JSON body (over WebSocket: an error event when ``status`` >= 400)."""

    def reset(self) -> None:
        """Abort the connection (TCP RST) before any answer."""

    def send_message(self, data: bytes) -> None:
        """Send one encoded stream message as is; OSError when the client is gone."""

    def drop(self) -> None:
        """Cut the connection mid-stream, without ending the stream."""

    def encode(self, event: Mapping[str, Any]) -> bytes:
        """One event in this connection's framing (an SSE message, a text frame)."""

    def malformed(self) -> bytes:
        """One event whose JSON does not parse, in this connection's framing."""

FAULT_HEADER = "x-codexapi-fault"
FAULT_ID_HEADER = "x-codexapi-fault-id"
MODEL_PREFIX = "fault:"

#: Kinds answered before the response head (they replace the route).
HEAD_KINDS = frozenset({"status", "reset", "stallhead", "usage_limit", "quota"})
#: Kinds acting on a started stream.
STREAM_KINDS = frozenset({"drop", "stall", "malformed", "truncate", "failed", "ratelimits"})
_NAMED = (HEAD_KINDS | STREAM_KINDS) - {"status"}

#: Messages the real API sends with each ``response.failed`` code.
FAILURE_MESSAGES = {
    "context_length_exceeded": "Your input exceeds the context window of this model. Please "
                               "adjust your input and try again.",
    "insufficient_quota": "You exceeded your current quota, please check your plan and "
                          "billing details.",
    "usage_not_included": "Your plan does not include usage of this model.",
    "invalid_prompt": "Invalid prompt: your prompt was flagged as potentially violating our "
                      "usage policy.",
    "server_is_overloaded": "Our servers are currently overloaded. Please try again later.",
    "slow_down": "Please slow down.",
    "server_error": "The server had an error while processing your request. Sorry about that!",
}

#: The 429 bodies that end a turn at once (``quota:TYPE``): (type, code, message).
QUOTA_ERRORS = {
    "usage_limit_reached": ("usage_limit_reached", None, "The usage limit has been reached"),
    "usage_not_included": ("usage_not_included", None,
                           "Your plan does not include usage of this model."),
    "insufficient_quota": ("insufficient_quota", "insufficient_quota",
                           "You exceeded your current quota, please check your plan and "
                           "billing details."),
    "billing_hard_limit_reached": ("insufficient_quota", "billing_hard_limit_reached",
                                   "Billing hard limit has been reached."),
    "account_deactivated": ("invalid_request_error", "account_deactivated",
                            "This account has been deactivated."),
}
#: The plan a usage-limit answer names (Codex reads it to word its message).
USAGE_LIMIT_PLAN = "plus"

_TERM = re.compile(
    r"^(?P<name>[a-z_]+?|\d{3})(?:x(?P<times>\d+))?(?::(?P<arg>[^@]*))?(?:@(?P<after>\d+))?$")


class FaultSpecError(ConfigError, ValueError):
    """A fault plan that does not parse; the message says which term and why."""


@attrs.frozen
class Fault:
    """One parsed term of a fault plan."""

    kind: str
    spec: str
    times: int | None = None
    status: int = 0
    arg: str = ""
    after: int = 1
    seconds: float = 0.0


def _float_arg(arg: str, default: float, term: str, limit: float = 3600.0) -> float:
    if not arg:
        return default
    try:
        value = float(arg)
    except ValueError:
        raise FaultSpecError(f"fault {term!r}: {arg!r} is not a number of seconds") from None
    if not 0.0 <= value <= limit:
        raise FaultSpecError(f"fault {term!r}: seconds must be within 0..{limit:g}")
    return value


def parse_term(term: str) -> Fault:
    """Parse one ``NAME[xN][:ARG][@K]`` term."""
    text = term.strip().lower()
    match = _TERM.match(text)
    if not match:
        raise FaultSpecError(f"fault {term!r} does not read as NAME[xN][:ARG][@K]")
    name, arg = match.group("name"), match.group("arg") or ""
    times = int(match.group("times")) if match.group("times") else None
    after_text = match.group("after")
    after = int(after_text) if after_text else 2
    if name.isdigit():
        status = int(name)
        if not 400 <= status <= 599:
            raise FaultSpecError(f"fault {term!r}: only 4xx and 5xx statuses can be injected")
        if status == 429 and not arg:
            arg = "1"
        _retry_hint_headers(arg, term)  # validates
        return Fault("status", text, times, status=status, arg=arg)
    if name not in _NAMED:
        known = ", ".join(sorted(_NAMED | {"<status>"}))
        raise FaultSpecError(f"unknown fault {name!r} in {term!r} (known: {known})")
    seconds = 0.0
    if name in ("stall", "stallhead"):
        seconds = _float_arg(arg, 1.0, term)
    if name == "failed":
        code, _, secs = (arg or "server_error").partition("=")
        if not re.fullmatch(r"[a-z_]+", code):
            raise FaultSpecError(f"fault {term!r}: {code!r} is not an error code")
        seconds = _float_arg(secs, 1.5, term)
        arg = code
    if name == "usage_limit":
        # Usage windows run up to a week (Codex's secondary window).
        seconds = _float_arg(arg, 3600.0, term, limit=7 * 24 * 3600.0)
    if name == "quota" and arg not in QUOTA_ERRORS:
        raise FaultSpecError(f"fault {term!r}: quota needs one of "
                             f"{', '.join(QUOTA_ERRORS)} (quota:TYPE)")
    if name in ("malformed", "failed") and not after_text:
        after = 1
    return Fault(name, text, times, arg=arg, after=after, seconds=seconds)


def parse(plan: str | Iterable[str] | None) -> tuple[Fault, ...]:
    """Parse a plan: a comma-separated string, or several of them."""
    if plan is None:
        return ()
    parts = [plan] if isinstance(plan, str) else list(plan)
    return tuple(parse_term(t) for p in parts for t in p.split(",") if t.strip())


def _retry_hint_headers(arg: str, term: str = "") -> dict[str, str]:
    if not arg or arg in ("none",) or arg.startswith("msg"):
        if arg.startswith("msg"):
            _float_arg(arg[3:], 1.0, term)
        return {}
    if arg.endswith("ms"):
        return {"retry-after-ms": str(int(_float_arg(arg[:-2], 0.0, term)))}
    if arg.startswith("date"):
        ahead = _float_arg(arg[4:], 1.0, term)
        return {"Retry-After": email.utils.formatdate(time.time() + ahead, usegmt=True)}
    seconds = _float_arg(arg, 1.0, term)
    return {"Retry-After": f"{seconds:g}"}


def rate_limit_message(seconds: float) -> str:
    """The real API's rate-limit wording, which clients parse for the delay."""
    return ("Rate limit reached for gpt-5 in organization org-embedded on tokens per min "
            "(TPM): Limit 30000, Used 29000, Requested 2000. Please try again in "
            f"{seconds:g}s. Visit https://platform.openai.com/account/rate-limits to learn more.")


#: Headers the ``ratelimits`` fault adds (fixed values, so tests can compare them).
RATE_LIMIT_HEADERS = {
    "x-codex-primary-used-percent": "42.5",
    "x-codex-primary-window-minutes": "300",
    "x-codex-primary-reset-at": "1704069000",
    "x-codex-secondary-used-percent": "7",
    "x-codex-secondary-window-minutes": "10080",
    "x-codex-secondary-reset-at": "1704600000",
    "x-codex-credits-has-credits": "true",
    "x-codex-credits-unlimited": "false",
    "x-codex-credits-balance": "17.25",
    "x-ratelimit-limit-requests": "500",
    "x-ratelimit-remaining-requests": "499",
    "x-ratelimit-reset-requests": "120ms",
    "x-ratelimit-limit-tokens": "200000",
    "x-ratelimit-remaining-tokens": "199000",
    "x-ratelimit-reset-tokens": "6s",
}


class FaultInjector:
    """A server's faults: its own plan, per-request plans, and the counts behind ``xN``.

    Thread-safe; one per server. ``log`` records what each fault did, for tests.
    """

    #: Counts kept before the oldest are forgotten (a long-running ``serve`` stays bounded).
    MAX_KEYS = 10_000

    def __init__(self, plan: str | Iterable[str] | None = None) -> None:
        self.plan = parse(plan)
        #: Whether requests may bring their own plans (header, model name, client_metadata);
        #: off on a recording proxy, whose requests' plans are meant for the upstream.
        self.request_plans = True
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        #: Set when the server stops, so a stall does not outlive it.
        self.stopping = threading.Event()
        #: (fault id, term, what happened) in order; the oldest entries are forgotten.
        self.log: collections.deque[tuple[str, str, str]] = collections.deque(
            maxlen=self.MAX_KEYS)

    def take(self, fault: Fault, fault_id: str) -> bool:
        """Whether ``fault`` acts on this request (consuming one of its ``xN``)."""
        if fault.times is None:
            return True
        key = (fault.spec, fault_id)
        with self._lock:
            used = self._counts.get(key, 0)
            if used >= fault.times:
                return False
            if len(self._counts) >= self.MAX_KEYS:
                self._counts.pop(next(iter(self._counts)))
            self._counts[key] = used + 1
            return True

    def record(self, fault_id: str, fault: Fault, what: str) -> None:
        with self._lock:
            self.log.append((fault_id, fault.spec, what))

    def events_for(self, fault_id: str) -> list[tuple[str, str]]:
        """What the faults did to requests with this fault id."""
        with self._lock:
            return [(spec, what) for fid, spec, what in self.log if fid == fault_id]

    def plan_for(self, ex: Connection) -> tuple[Fault, ...]:
        if not self.request_plans:
            return self.plan
        own = _metadata(ex.body).get(FAULT_HEADER)
        if own:
            return parse(own)
        header = ex.headers.get(FAULT_HEADER)
        if header:
            return parse(header)
        model = ex.body.get("model") if isinstance(ex.body, dict) else None
        if isinstance(model, str) and model.startswith(MODEL_PREFIX):
            return parse(model[len(MODEL_PREFIX):])
        return self.plan

    def intercept(self, ex: Connection, plan: tuple[Fault, ...] | None = None) -> bool:
        """Apply the request's faults (or ``plan``, a script rule's). True when a fault
        answered (the route must not run)."""
        if plan is None:
            try:
                plan = self.plan_for(ex)
            except FaultSpecError as exc:
                ex.send_error(400, str(exc), "invalid_fault")
                return True
        if not plan:
            return False
        fault_id = _metadata(ex.body).get(FAULT_ID_HEADER) or fault_id_of(ex.headers)
        for fault in plan:
            if fault.kind in HEAD_KINDS and self.take(fault, fault_id):
                self.record(fault_id, fault, "fired")
                if self._answer(ex, fault):
                    return True
        # Only a request that reaches the route consumes the counts of its stream faults.
        stream_faults = [f for f in plan if f.kind in STREAM_KINDS and self.take(f, fault_id)]
        if stream_faults:
            ex.stream_faults = StreamFaults(self, fault_id, stream_faults)
        return False

    def _answer(self, ex: Connection, fault: Fault) -> bool:
        if fault.kind == "stallhead":
            self.stopping.wait(fault.seconds)
            return False  # then answer normally (the client may have given up)
        if fault.kind == "reset":
            ex.reset()
            return True
        if fault.kind in ("usage_limit", "quota"):
            code = "usage_limit_reached" if fault.kind == "usage_limit" else fault.arg
            ex.send_json(429, *quota_error(code, int(fault.seconds or 3600)))
            return True
        headers = _retry_hint_headers(fault.arg)
        status = fault.status
        if status == 429:
            message = "Rate limit reached for requests"
            if fault.arg.startswith("msg"):
                message = rate_limit_message(float(fault.arg[3:] or 1.0))
            ex.send_error(429, message, "rate_limit_exceeded", "requests", headers)
        elif status >= 500:
            ex.send_error(status, "The server had an error while processing your request. "
                          "Sorry about that!", None, "server_error", headers)
        else:
            ex.send_error(status, f"Injected {status} fault.", "injected_fault",
                          "invalid_request_error", headers)
        return True


def quota_error(code: str, resets_in: int = 3600) -> tuple[dict[str, Any], dict[str, str]]:
    """(body, headers) of the 429 for one of :data:`QUOTA_ERRORS`; a usage limit carries
    its reset time (``resets_at``, ``resets_in_seconds``), the plan, and rate-limit headers
    with the primary window used up."""
    err_type, err_code, message = QUOTA_ERRORS[code]
    error: dict[str, Any] = {"type": err_type, "code": err_code, "message": message,
                             "param": None}
    headers: dict[str, str] = {}
    if code == "usage_limit_reached":
        resets_at = int(time.time()) + resets_in
        error.update(plan_type=USAGE_LIMIT_PLAN, resets_at=resets_at,
                     resets_in_seconds=resets_in)
        headers = {"x-codex-primary-used-percent": "100",
                   "x-codex-primary-window-minutes": "300",
                   "x-codex-primary-reset-at": str(resets_at),
                   "x-codex-primary-reset-after-seconds": str(resets_in),
                   "x-codex-secondary-used-percent": "40",
                   "x-codex-secondary-window-minutes": "10080"}
    return {"error": error}, headers


#: Headers naming the conversation a request belongs to, first found wins.
FAULT_ID_SOURCES = (FAULT_ID_HEADER, "session-id", "session_id", "thread-id")


def _metadata(body: Any) -> Mapping[str, Any]:
    """The request body's ``client_metadata``: where a WebSocket turn carries its own plan
    (``x-codexapi-fault``) and fault id, since its headers are the connection's."""
    meta = body.get("client_metadata") if isinstance(body, Mapping) else None
    if not isinstance(meta, Mapping):
        return {}
    return {k: v for k, v in meta.items() if k in (FAULT_HEADER, FAULT_ID_HEADER)
            and isinstance(v, str)}


def fault_id_of(headers: Mapping[str, str]) -> str:
    for name in FAULT_ID_SOURCES:
        value = headers.get(name)
        if value:
            return value
    return ""


_COMPLETION = {
    "responses": re.compile(rb"^event: response\.completed|\"type\":\s*\"response\.completed\""),
    "chat": re.compile(rb"\"finish_reason\":\s*\"|^data: \[DONE\]"),
}


class StreamFaults:
    """The faults acting on one started stream; the exchange routes its messages here."""

    def __init__(self, injector: FaultInjector, fault_id: str, faults: list[Fault]) -> None:
        self.injector = injector
        self.fault_id = fault_id
        self.faults = faults
        self.sent = 0
        #: Once set, the route's remaining writes are swallowed.
        self.finished = False
        self.dropped = False
        self.broken = False

    @property
    def extra_headers(self) -> dict[str, str]:
        if any(f.kind == "ratelimits" for f in self.faults):
            return dict(RATE_LIMIT_HEADERS)
        return {}

    def write(self, ex: Connection, data: bytes, final: bool | None = None) -> None:
        """Pass one stream message through the faults. ``final``: whether it is the stream's
        completion (None: recognise it in ``data``, for routes that send raw bytes)."""
        if self.finished or not data:
            return
        for fault in self.faults:
            kind = fault.kind
            if kind == "truncate":
                if final is None:
                    final = bool(_COMPLETION[ex.wire].search(data))
                if final:
                    self._note(fault, "truncated")
                    self.finished = True
                    return
            if self.sent != fault.after:
                continue
            if kind == "drop":
                self._note(fault, "dropped")
                self.finished = self.dropped = True
                ex.drop()
                return
            if kind == "stall":
                self._note(fault, "stalling")
                self.injector.stopping.wait(fault.seconds)
                self._note(fault, "resumed")
            elif kind == "malformed":
                self._send(ex, fault, ex.malformed())
            elif kind == "failed":
                self._send(ex, fault, _failure(ex, fault))
                self.finished = True
                return
        self.sent += 1
        self._send(ex, None, data)

    def end(self) -> bool:
        """Whether the stream may be ended normally (not after a drop or a lost client)."""
        return not (self.dropped or self.broken)

    def _note(self, fault: Fault, what: str) -> None:
        self.injector.record(self.fault_id, fault, what)

    def _send(self, ex: Connection, fault: Fault | None, data: bytes) -> None:
        try:
            ex.send_message(data)
        except OSError:
            # The client left (say an idle timeout closed its end): note it for tests and
            # swallow the rest of the route's output.
            for f in self.faults:
                self._note(f, "client gone")
            self.finished = self.broken = True
            ex.drop()
            return
        if fault is not None:
            self._note(fault, "sent")


def _failure(ex: Connection, fault: Fault) -> bytes:
    code = fault.arg
    if code == "rate_limit_exceeded":
        message = rate_limit_message(fault.seconds)
    else:
        message = FAILURE_MESSAGES.get(code, f"Injected failure {code}.")
    error: dict[str, Any] = {"code": code, "message": message}
    if ex.wire == "chat":
        error.update(type=code, param=None)
        return ex.encode({"error": error})
    return ex.encode({"type": "response.failed", "sequence_number": 1,
                      "response": {"id": "resp_fault", "object": "response", "status": "failed",
                                   "error": error, "usage": None}})


def describe() -> str:
    """The plan grammar, for ``codexapi serve --help``."""
    return ("fault plan: comma-separated NAME[xN][:ARG][@K]; NAME is a 4xx/5xx status "
            "(ARG: retry hint 2 | 1500ms | msg1.5 | date3 | none), reset, stallhead:T, drop@K, "
            "stall:T@K, malformed@K, truncate, failed:CODE[=S]@K, ratelimits, "
            "usage_limit[:S] (429 usage_limit_reached, resets in S s), quota:TYPE (429 "
            f"{'|'.join(QUOTA_ERRORS)}); xN: first N requests only")
