"""A careless server on 127.0.0.1 that echoes a secret back in every place it can: the status
line, response headers (``x-request-id`` included), JSON error bodies, ``response.failed``
messages, Chat error chunks, undecodable SSE data, response ids and a refused WebSocket
upgrade. Each echo uses several spellings at once: raw, JSON-escaped, every character
``\\u``-escaped, percent-encoded (``%XX`` and ``+``).

The first path segment picks the answer (``http://127.0.0.1:PORT/<mode>/v1``); ``secret`` is
what to echo (the tests set it to the key the client sends). Every wait is bounded; requests
are recorded as ``(method, path, headers, body)``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, quote_plus

MODES = ("error401", "error500", "failed", "undecodable", "chat", "ok", "ws")


def spellings(secret: str) -> list[str]:
    """The spellings of ``secret`` this server echoes (and a test must never find)."""
    return list(dict.fromkeys([
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        every_char_escaped(secret),
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    ]))


def every_char_escaped(secret: str) -> str:
    """Each character as a JSON ``\\u`` escape (a surrogate pair beyond the BMP)."""
    out = []
    for ch in secret:
        code = ord(ch)
        if code > 0xFFFF:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04X}")
        else:
            out.append(f"\\u{code:04x}")
    return "".join(out)


def ascii_form(secret: str) -> str:
    """A spelling that fits a status line or header: raw when printable ASCII, else
    percent-encoded."""
    if secret.isascii() and secret.isprintable():
        return secret
    return quote(secret, safe="")


class EchoServer:
    def __init__(self) -> None:
        self.secret = "unset-secret"
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10
            disable_nagle_algorithm = True  # a head and a body are two writes

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                outer._answer(self, b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                outer._answer(self, self.rfile.read(length))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    def base_url(self, mode: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{mode}/v1"

    def __enter__(self) -> EchoServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # --- answers ---------------------------------------------------------------------------
    def _echo_text(self) -> str:
        return " | ".join(spellings(self.secret))

    def _error_body(self) -> bytes:
        secret = self.secret
        data = {"error": {"message": f"Incorrect API key provided: {secret} "
                                     f"({quote(secret, safe='')}, {quote_plus(secret)})",
                          "type": "invalid_request_error", "code": "invalid_api_key",
                          "param": secret, "hint": "HINT"}}
        text = json.dumps(data, ensure_ascii=False)
        # One more spelling a JSON encoder never produces by itself: every character escaped.
        return text.replace("HINT", every_char_escaped(secret)).encode("utf-8")

    def _echo_headers(self) -> dict[str, str]:
        form = ascii_form(self.secret)
        return {"x-request-id": form, "x-echo": every_char_escaped(self.secret),
                "x-echo-pct": quote(self.secret, safe=""),
                "www-authenticate": f'Bearer error="invalid_token", error_description="{form}"'}

    def _sse(self, events: Iterator[str]) -> bytes:
        return "".join(f"data: {e}\n\n" for e in events).encode("utf-8")

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        path = handler.path
        with self._lock:
            self.requests.append((handler.command, path,
                                  {k.lower(): v for k, v in handler.headers.items()}, body))
        mode = path.split("/")[1] if path.count("/") >= 2 else ""
        secret = self.secret
        status, reason = 200, "OK"
        headers = self._echo_headers()
        content_type = "text/event-stream"
        if mode == "ws" and handler.headers.get("Upgrade", "").lower() == "websocket":
            status, reason, data = 401, f"Unauthorized {ascii_form(secret)}", b""
            content_type = "text/plain"
        elif mode in ("error401", "error500"):
            status = 401 if mode == "error401" else 500
            reason = f"Bad key {ascii_form(secret)}"
            data, content_type = self._error_body(), "application/json"
        elif mode == "failed":
            error = {"code": "server_error", "message": f"key {secret} was refused: "
                     f"{quote(secret, safe='')}", "param": secret}
            # Failed before any event reached the caller: the turn is sent again.
            data = self._sse(iter([
                json.dumps({"type": "response.failed", "response": {"id": "resp_1",
                                                                    "error": error}}),
            ]))
        elif mode == "undecodable":
            # Not JSON (never closed), with the secret where an 80-character preview cuts it
            # (at character 50 of 77).
            pad = "xxxx"
            data = self._sse(iter([
                json.dumps({"type": "response.created", "response": {"id": "resp_1"}}),
                # (JSON-escaped: a line break in the key would end the SSE line.)
                '{"type":"response.output_text.delta","delta":"' + pad
                + json.dumps(secret, ensure_ascii=False)[1:-1] + every_char_escaped(secret),
            ]))
        elif mode == "chat":
            data = self._sse(iter([json.dumps({"error": {
                "message": f"bad key {secret} {quote_plus(secret)}", "type": "auth",
                "code": {"nested": secret}}}, ensure_ascii=False)]))
        else:  # ok, and ws falling back to HTTP
            text = json.dumps({"type": "response.output_text.delta", "delta": "fine"})
            item = json.dumps({"type": "response.output_item.done", "item": {
                "type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "fine"}]}})
            done = json.dumps({"type": "response.completed", "response": {
                "id": f"resp_{secret}", "model": f"m-{secret}", "usage": {
                    "input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}},
                ensure_ascii=False)
            data = self._sse(iter([
                json.dumps({"type": "response.created", "response": {"id": "resp_1"}}),
                text, item, done]))
        handler.send_response(status, reason)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
