"""First-party auth plugin: the fallback chain that picks a provider's credentials.

Asked after every other plugin (built-ins are registered ``trylast``), so any plugin's answer
wins; a plugin that returns None hands the provider to this chain. The auth classes themselves
live in :mod:`codexapi.auth` (``codexapi.BearerAuth`` and friends); they are re-exported here
for code written against earlier versions.
"""

from __future__ import annotations

import os
from typing import Any

import attrs

from codexapi import (
    AuthError,
    AzureKeyAuth,
    BearerAuth,
    CodexAuthFile,
    CommandAuth,
    NoAuth,
    Provider,
    WireApi,
    hookimpl,
)
from codexapi.plugin_api import Token, checked_secret, codex_home

__all__ = ["AzureKeyAuth", "BearerAuth", "CodexAuthFile", "CommandAuth", "NoAuth", "Token",
           "codex_home", "codexapi_auth"]


@hookimpl
def codexapi_auth(provider: Provider) -> Any:
    """The fallback chain: the provider's own ``env_key`` variable when it names one; else the
    credentials its configuration names (``Provider.auth``: a token command,
    ``experimental_bearer_token``); else env key (Azure's for an Azure provider), Codex
    auth.json, NoAuth."""
    env_key = getattr(provider, "env_key", None)
    if env_key:
        # As Codex does for a provider with env_key: that variable or nothing (no fallback to
        # other credentials meant for another provider).
        value = os.environ.get(env_key, "").strip()
        if not value:
            hint = getattr(provider, "env_key_instructions", None)
            raise AuthError(f"provider {provider.name!r} reads its API key from the environment "
                            f"variable {env_key}, which is not set"
                            + (f"; {hint}" if hint else f"; export {env_key}=<your key>"))
        return BearerAuth(checked_secret(value, f"the value of {env_key}"))
    configured = getattr(provider, "auth", None)
    if configured is not None:
        return configured
    # Azure is recognised by name or host whatever the wire (is_azure_responses_endpoint
    # alone answers False for the Chat wire, where Azure still wants its api-key header).
    if attrs.evolve(provider, wire=WireApi.RESPONSES).is_azure_responses_endpoint():
        key = os.environ.get("AZURE_OPENAI_API_KEY", "").strip()
        if key:
            return AzureKeyAuth(key)
    key = os.environ.get("OPENAI_API_KEY", "").strip()
    if key:
        return BearerAuth(key)
    auth_file = codex_home() / "auth.json"
    if auth_file.exists():
        # An unreadable or malformed file is reported (naming it) on first use, not skipped:
        # silently sending no credentials would only turn it into a confusing 401.
        return CodexAuthFile(auth_file)
    return NoAuth()
