"""``use_cassette``: record or replay codexapi's HTTP traffic with vcrpy.

vcrpy swaps urllib3's connection classes, so on replay :class:`codexapi.Urllib3Transport`
receives ``vcr.stubs.VCRHTTPResponse`` objects (plain ``http.client`` responses) and reads
them through the same ``read1`` loop as a live socket. Two things are added on top of vcrpy:
a replayed event stream is handed out one SSE event per read (as a server flushes them), and
with record mode ``none`` any attempt to open a socket fails (no silent network in CI).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from ..redact import redact_url
from . import matching
from .errors import CassetteError, NetworkBlockedError, NoMatchingInteractionError
from .formats import Interaction
from .modes import RECORD_MODES
from .scrub import Scrubber
from .storage import Persister

#: The record modes, vcrpy's meaning: ``none`` replays only; ``once`` records a cassette
#: that does not exist yet; ``new_episodes`` replays and records what is missing; ``all``
#: records everything again.

MATCHERS: dict[str, Callable[..., Any]] = {
    "method": lambda fields: matching.method,
    "uri": lambda fields: matching.uri,
    "path": lambda fields: matching.path,
    "body": matching.json_body,
}
DEFAULT_MATCH_ON = ("method", "uri", "body")


@attrs.define
class CassetteHandle:
    """The active cassette: where it lives, its mode, and what was played from it."""

    path: Path
    record_mode: str
    cassette: Any = attrs.field(repr=False)

    @property
    def play_count(self) -> int:
        return int(self.cassette.play_count)

    @property
    def all_played(self) -> bool:
        return bool(self.cassette.all_played)

    def __len__(self) -> int:
        return len(self.cassette.data)

    @property
    def requests(self) -> list[Any]:
        return list(self.cassette.requests)

    def interactions(self) -> list[Interaction]:
        """What the cassette holds now, loaded and just recorded alike (as stored: scrubbed,
        bodies decoded), so a test can assert against its recording in every mode. In record
        mode ``all`` the file's old content is being replaced: only this run's recordings."""
        data = self.cassette.data
        if self.record_mode == "all":
            data = data[getattr(self.cassette, "_loaded_count", 0):]
        out = []
        for index, (request, response) in enumerate(data):
            body = (response.get("body") or {}).get("string")
            out.append(Interaction(
                method=str(request.method).upper(), uri=str(request.uri),
                request_headers=_pairs(request.headers),
                request_body=request.body if isinstance(request.body, bytes) else None,
                status=int(response["status"]["code"]),
                reason=str(response["status"].get("message") or ""),
                headers=_pairs(response.get("headers") or {}),
                body=body.encode("utf-8") if isinstance(body, str) else (body or b""),
                index=index))
        return out


def _pairs(headers: Any) -> tuple[tuple[str, str], ...]:
    pairs: list[tuple[str, str]] = []
    for name, values in dict(headers).items():
        seq = values if isinstance(values, list | tuple) else [values]
        pairs.extend((str(name), str(v)) for v in seq)
    return tuple(pairs)


def _vcr() -> Any:
    try:
        import vcr
        import vcr.stubs
    except ImportError:  # pragma: no cover - vcrpy ships with the test extra
        raise CassetteError("cassettes need vcrpy: pip install 'codexapi[cassettes]'") from None
    return vcr


_SUBCLASSES: dict[Any, Any] = {}


def _cassette_class() -> Any:
    from vcr.cassette import Cassette

    # Keyed by vcrpy's class, not cached once: a re-imported vcrpy (pytester restores
    # sys.modules between in-process runs) needs a subclass of its own classes.
    if Cassette in _SUBCLASSES:
        return _SUBCLASSES[Cassette]

    class CodexapiCassette(Cassette):  # type: ignore[misc]
        # vcrpy asks filter_request exactly when a write-protected cassette has nothing to
        # play for a request; raising here replaces vcrpy's untyped exception with ours.
        def filter_request(self, request: Any) -> Any:
            filtered = super().filter_request(request)
            if filtered is not None and self.write_protected:
                raise _no_match(self, request, filtered)
            return filtered

    _SUBCLASSES[Cassette] = CodexapiCassette
    return CodexapiCassette


def _no_match(cassette: Any, request: Any, filtered: Any) -> NoMatchingInteractionError:
    path = Path(cassette._path)
    candidates = []
    for stored, _passed, failed in cassette.find_requests_with_most_matches(filtered)[:3]:
        why = "; ".join(f"{name}: {msg or 'differs'}" for name, msg in failed) or (
            "matches, but was already played (each interaction plays once)")
        candidates.append(f"{matching.describe(stored)}\n      {why}")
    if not path.exists():
        hint = (f"the cassette file {path} does not exist: record it with "
                "pytest --codexapi-record-mode=once")
    else:
        hint = ("to record it: pytest --codexapi-record-mode=new_episodes (add) or "
                "--codexapi-record-mode=all (re-record)")
    return NoMatchingInteractionError(
        request.method, redact_url(request.uri), matching.summarize_body(request.body),
        str(path), str(cassette.record_mode.value if hasattr(cassette.record_mode, "value")
                       else cassette.record_mode), candidates, hint)


def _framed_read1(self: Any, size: int = -1) -> bytes:
    """``read1`` for a replayed response: an event stream comes out one SSE event at a time,
    so a replay exercises incremental decoding the way a live server's flushes do."""
    content = self._content
    ctype = (self.msg.get("content-type") or "") if self.msg is not None else ""
    if "text/event-stream" not in ctype:
        return bytes(content.read1(size))
    data: bytes = self.recorded_response["body"]["string"]
    pos = content.tell()
    end = len(data)
    for blank_line in (b"\n\n", b"\r\n\r\n"):
        found = data.find(blank_line, pos)
        if found >= 0:
            end = min(end, found + len(blank_line))
    if size is not None and size >= 0:
        end = min(end, pos + size)
    return bytes(content.read(end - pos))


@contextlib.contextmanager
def _no_network(path: Path) -> Iterator[None]:
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def refuse(sock: socket.socket, address: Any) -> Any:
        if sock.family == getattr(socket, "AF_UNIX", None):
            return real_connect(sock, address)
        raise NetworkBlockedError(
            f"a connection to {address!r} was attempted while replaying {path} with record "
            "mode 'none' (replays never use the network; is this client one vcrpy patches? "
            "urllib3, requests and httpx are)")

    socket.socket.connect = refuse  # type: ignore[method-assign,assignment]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]


def check_record_mode(mode: str) -> str:
    if mode not in RECORD_MODES:
        raise CassetteError(f"unknown record mode {mode!r}: use one of {', '.join(RECORD_MODES)}")
    return mode


@contextlib.contextmanager
def use_cassette(
    path: str | Path,
    record_mode: str = "none",
    *,
    ignore_fields: Iterable[str] = (),
    scrub_headers: Iterable[str] = (),
    match_on: Sequence[str | Callable[[Any, Any], Any]] = DEFAULT_MATCH_ON,
    block_network: bool | None = None,
    allow_playback_repeats: bool = False,
) -> Iterator[CassetteHandle]:
    """Record or replay HTTP traffic made inside the block.

    ``ignore_fields``: JSON body fields left out of matching (``prompt_cache_key``, or a
    dotted path such as ``metadata.trace``). ``scrub_headers``: more header names to redact on
    record. ``block_network`` (default: when ``record_mode`` is ``none``) makes any socket
    connection fail with :class:`NetworkBlockedError`.
    """
    vcr = _vcr()
    mode = check_record_mode(record_mode)
    fields = tuple(ignore_fields)
    matchers = []
    for m in match_on:
        if callable(m):
            matchers.append(m)
        elif m in MATCHERS:
            matchers.append(MATCHERS[m](fields))
        else:
            raise CassetteError(f"unknown matcher {m!r}: use {', '.join(MATCHERS)} or a callable")
    target = Path(path)
    scrubber = Scrubber(scrub_headers)
    context = _cassette_class().use(
        path=str(target), persister=Persister, record_mode=vcr.mode(mode),
        match_on=tuple(matchers), before_record_request=scrubber.request,
        before_record_response=scrubber.response,
        allow_playback_repeats=allow_playback_repeats,
        # Re-recording replaces the file: a recording no request asked for this time is stale.
        drop_unused_requests=mode == "all")
    block = (mode == "none") if block_network is None else block_network
    with contextlib.ExitStack() as stack:
        cassette = stack.enter_context(context)
        stack.enter_context(_patched(vcr.stubs.VCRHTTPResponse, "read1", _framed_read1))
        if block:
            stack.enter_context(_no_network(target))
        yield CassetteHandle(target, mode, cassette)


@contextlib.contextmanager
def _patched(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = owner.__dict__[name]
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)
