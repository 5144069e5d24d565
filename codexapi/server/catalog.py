"""``GET /v1/models``: the models the scripted model answers as, with an ETag.

Without a query it is OpenAI's list (``{"object": "list", "data": [{"id": ...}]}``), which
openai-python's ``models.list()`` reads. With ``client_version`` (how Codex asks) it is the
Codex shape ``{"models": [ModelInfo, ...]}``, each entry carrying the fields of the Codex CLI's
bundled catalog (0.171: ``model_messages.instructions_template`` is the one it cannot do
without). Either way the body has a strong ETag, and a request whose ``If-None-Match`` matches
it gets ``304 Not Modified`` with no body. Responses replies carry the Codex list's ETag as
``X-Models-Etag`` (:data:`MODELS_ETAG`), which is how the CLI learns its cache is current.
``GET /v1/models/{id}`` answers one model (404 ``model_not_found`` for others).
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


#: The base instructions the CLI sends as its first input item for these models.
INSTRUCTIONS = ("You are a scripted model served by codexapi. You answer deterministically: "
                "you echo the user, call a tool when asked to, and report tool output.")


def model_info(rank: int, slug: str, name: str, window: int) -> dict[str, Any]:
    """One entry in the Codex CLI's ModelInfo shape (its bundled catalog's fields)."""
    return {
        "slug": slug, "display_name": name, "description": f"{name}, answered offline",
        "default_reasoning_level": "medium",
        "supported_reasoning_levels": [{"effort": e, "description": e}
                                       for e in ("low", "medium", "high")],
        "shell_type": "shell_command", "visibility": "list", "minimal_client_version": "0.1.0",
        "supported_in_api": True, "availability_nux": None, "upgrade": None,
        "priority": rank,
        "model_messages": {"instructions_template": INSTRUCTIONS,
                           "instructions_variables": None, "persistent_instructions": None,
                           "apps": None, "tools": None, "permissions": None},
        "prefer_websockets": True, "support_verbosity": False, "default_verbosity": None,
        "apply_patch_tool_type": "freeform", "input_modalities": ["text", "image"],
        "supports_image_detail_original": False,
        "truncation_policy": {"mode": "bytes", "limit": 10000},
        "supports_parallel_tool_calls": True, "multi_agent_reasoning_effort": None,
        "use_responses_lite": False, "supports_reasoning_effort_updates": False,
        "include_skills_usage_instructions": False, "include_apps_usage_instructions": False,
        "include_plugin_usage_instructions": False, "guardian": None,
        "node_repl_auto_review_required": False, "node_repl_disabled": False,
        "requires_sandboxed_review": False, "allow_only_codex_cloud_agent_orchestrator": False,
        "allow_only_chatgpt_workspace_executor": False, "auto_review_model_override": None,
        "model_specialty": None, "context_window": window, "max_context_window": window,
        "auto_compact_token_limit": None, "default_reasoning_summary": "auto",
        "experimental_supported_tools": [], "available_in_plans": [],
        "supports_search_tool": False, "supports_experimental_context": False,
        "default_service_tier": None, "service_tiers": [], "additional_speed_tiers": [],
        "supports_reasoning_summary_parameter": True, "supports_reasoning_summaries": True,
    }


def codex_list(client_version: str = "") -> dict[str, Any]:
    return {"models": [model_info(rank, slug, name, window)
                       for rank, (slug, name, window) in enumerate(MODELS, start=1)]}


def etag_of(data: bytes) -> str:
    return '"' + hashlib.sha256(data).hexdigest()[:32] + '"'


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


#: The ETag of the Codex model list, sent as ``X-Models-Etag`` on Responses replies.
MODELS_ETAG = etag_of(_encode(codex_list()))


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
    data = _encode(payload)
    etag = etag_of(data)
    if _matches(ex.headers.get("If-None-Match"), etag):
        ex.send_bytes(304, b"", "application/json", {"ETag": etag})
        return
    ex.send_bytes(200, data, "application/json", {"ETag": etag})


@route("GET", "/models/{id}")
def get_model(ex: Exchange) -> None:
    wanted = ex.params["id"]
    for rank, (slug, name, window) in enumerate(MODELS, start=1):
        if slug == wanted:
            if ex.query.get("client_version"):
                ex.send_json(200, model_info(rank, slug, name, window))
            else:
                ex.send_json(200, {"id": slug, "object": "model", "created": CREATED,
                                   "owned_by": "codexapi"})
            return
    ex.send_error(404, f"The model '{wanted}' does not exist or you do not have access to it.",
                  "model_not_found")
