"""``GET /v1/models``: the models the scripted model answers as, with an ETag.

Without a query it is OpenAI's list (``{"object": "list", "data": [{"id": ...}]}``), which
openai-python's ``models.list()`` reads. With ``client_version`` (how Codex asks) it is the
Codex shape ``{"models": [{"slug": ...}]}``. Either way the body has a strong ETag, and a
request whose ``If-None-Match`` matches it gets ``304 Not Modified`` with no body.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .app import Exchange, route

#: (slug, display name, context window) of each listed model.
MODELS: tuple[tuple[str, str, int], ...] = (
    ("gpt-5", "GPT-5 (scripted)", 272_000),
    ("gpt-5-codex", "GPT-5-Codex (scripted)", 272_000),
    ("gpt-4o-mini", "GPT-4o mini (scripted)", 128_000),
)

CREATED = 1_735_689_600  # fixed, so the ETag only changes when the list does


def openai_list() -> dict[str, Any]:
    return {"object": "list", "data": [
        {"id": slug, "object": "model", "created": CREATED, "owned_by": "codexapi"}
        for slug, _, _ in MODELS
    ]}


def codex_list(client_version: str) -> dict[str, Any]:
    return {"models": [
        {"slug": slug, "display_name": name, "description": f"{name}, answered offline",
         "default_reasoning_level": "medium",
         "supported_reasoning_levels": [{"effort": e, "description": e}
                                        for e in ("low", "medium", "high")],
         "shell_type": "shell_command", "visibility": "list",
         "minimal_client_version": [0, 1, 0], "supported_in_api": True, "priority": rank,
         "upgrade": None, "base_instructions": None, "supports_reasoning_summaries": True,
         "support_verbosity": False, "default_verbosity": None,
         "apply_patch_tool_type": None,
         "truncation_policy": {"mode": "bytes", "limit": 10000},
         "supports_parallel_tool_calls": False, "context_window": window,
         "experimental_supported_tools": []}
        for rank, (slug, name, window) in enumerate(MODELS, start=1)
    ]}


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    candidates = [c.strip() for c in header.split(",")]
    # Weak comparison (RFC 9110 §13.1.2): W/"x" matches "x".
    return "*" in candidates or any(c.removeprefix("W/") == etag for c in candidates)


@route("GET", "/models")
def get_models(ex: Exchange) -> None:
    versions = ex.query.get("client_version")
    payload = codex_list(versions[0]) if versions else openai_list()
    data = json.dumps(payload, separators=(",", ":")).encode()
    etag = etag_of(data)
    if _matches(ex.headers.get("If-None-Match"), etag):
        h = ex.handler
        h.send_response(304)
        h.send_header("ETag", etag)
        h.send_header("Content-Length", "0")
        h.end_headers()
        h.wfile.flush()
        return
    ex.send_bytes(200, data, "application/json", {"ETag": etag})
