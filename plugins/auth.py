"""First-party auth: API keys, bearer tokens, Azure keys and Codex's ``auth.json``.

An auth object has ``headers() -> dict`` (called for every attempt) and ``refresh() -> bool``
(called once after a 401; True means "new credentials, try again"). Reprs never show secrets.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from codexapi import hookimpl
from codexapi.errors import AuthError
from codexapi.models import Provider
from codexapi.redact import mask

Token = str | Callable[[], str]


class NoAuth:
    """Sends no credentials (local servers, gateways that authenticate otherwise)."""

    def headers(self) -> dict[str, str]:
        return {}

    def refresh(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "NoAuth()"


class BearerAuth:
    """``Authorization: Bearer <token>`` (+ ``ChatGPT-Account-ID`` when ``account_id`` is set).

    ``token`` is a string, or a zero-argument callable called on first use and again on each
    :meth:`refresh` (e.g. fetching a short-lived token from a vault).
    """

    def __init__(self, token: Token, account_id: str | None = None) -> None:
        if not isinstance(token, str) and not callable(token):
            raise AuthError("BearerAuth token must be a string or a zero-argument callable")
        self._source = token
        self._token: str | None = token if isinstance(token, str) else None
        self.account_id = account_id
        self._lock = threading.Lock()

    def _fetch(self) -> str:
        source = self._source
        assert callable(source)
        name = getattr(source, "__qualname__", type(source).__name__)
        try:
            value = source()
        except Exception as exc:
            raise AuthError(f"token callable {name} raised {type(exc).__name__}: {exc}") from None
        if not isinstance(value, str) or not value:
            raise AuthError(f"token callable {name} returned {type(value).__name__}, "
                            "expected a non-empty string")
        return value

    def token(self) -> str:
        with self._lock:
            if self._token is None:
                self._token = self._fetch()
            return self._token

    def headers(self) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.token()}"}
        if self.account_id:
            out["ChatGPT-Account-ID"] = self.account_id
        return out

    def refresh(self) -> bool:
        if isinstance(self._source, str):
            return False
        with self._lock:
            old, self._token = self._token, self._fetch()
            return self._token != old

    def __repr__(self) -> str:
        return f"BearerAuth(token={mask(self._token or '')}, account_id={mask(self.account_id)})"


class AzureKeyAuth:
    """Azure OpenAI's ``api-key`` header."""

    def __init__(self, key: str) -> None:
        self._key = key

    def headers(self) -> dict[str, str]:
        return {"api-key": self._key}

    def refresh(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "AzureKeyAuth(key=<redacted>)"


def codex_home() -> Path:
    """``$CODEX_HOME``, default ``~/.codex``."""
    home = os.environ.get("CODEX_HOME")
    return Path(home).expanduser() if home else Path.home() / ".codex"


class CodexAuthFile:
    """Credentials from Codex's ``auth.json``: an ``OPENAI_API_KEY`` entry, or ChatGPT tokens
    (``tokens.access_token`` as bearer, ``tokens.account_id`` as ``ChatGPT-Account-ID``).
    The file is read on first use and again on :meth:`refresh` (Codex rewrites it when it
    refreshes its tokens)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else codex_home() / "auth.json"
        self._headers: dict[str, str] | None = None
        self._lock = threading.Lock()

    def _load(self) -> dict[str, str]:
        try:
            data: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AuthError(f"Codex auth file {self.path} does not exist; run `codex login` or "
                            "set OPENAI_API_KEY") from None
        except OSError as exc:
            raise AuthError(f"cannot read Codex auth file {self.path}: {exc.strerror}") from None
        except ValueError as exc:
            raise AuthError(f"Codex auth file {self.path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise AuthError(f"Codex auth file {self.path} must hold a JSON object")
        key = data.get("OPENAI_API_KEY")
        if isinstance(key, str) and key:
            return {"Authorization": f"Bearer {key}"}
        tokens = data.get("tokens")
        if isinstance(tokens, dict) and isinstance(tokens.get("access_token"), str):
            out = {"Authorization": f"Bearer {tokens['access_token']}"}
            if isinstance(tokens.get("account_id"), str) and tokens["account_id"]:
                out["ChatGPT-Account-ID"] = tokens["account_id"]
            return out
        raise AuthError(f"Codex auth file {self.path} has neither OPENAI_API_KEY nor "
                        "tokens.access_token")

    def headers(self) -> dict[str, str]:
        with self._lock:
            if self._headers is None:
                self._headers = self._load()
            return dict(self._headers)

    def refresh(self) -> bool:
        with self._lock:
            old, self._headers = self._headers, self._load()
            return self._headers != old

    def __repr__(self) -> str:
        return f"CodexAuthFile(path={str(self.path)!r})"


@hookimpl
def codexapi_auth(provider: Provider) -> Any:
    """The fallback chain: env key (Azure's for an Azure provider), Codex auth.json, NoAuth."""
    if provider.is_azure_responses_endpoint() or provider.name.lower() == "azure":
        key = os.environ.get("AZURE_OPENAI_API_KEY")
        if key:
            return AzureKeyAuth(key)
    key = os.environ.get("OPENAI_API_KEY")
    if key:
        return BearerAuth(key)
    auth_file = codex_home() / "auth.json"
    if auth_file.is_file():
        return CodexAuthFile(auth_file)
    return NoAuth()
