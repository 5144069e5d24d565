"""First-party auth: API keys, bearer tokens, Azure keys and Codex's ``auth.json``.

An auth object has ``headers() -> dict`` (called for every attempt) and ``refresh() -> bool``
(called once after a 401; True means "new credentials, try again"). Reprs never show secrets,
and no error raised here quotes a credential.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from codexapi import hookimpl
from codexapi.errors import AuthError
from codexapi.models import Provider, WireApi
from codexapi.redact import mask

Token = str | Callable[[], str]


def _clean(value: str, what: str) -> str:
    # Token files and vault CLIs often end in a newline; a line break inside a header value
    # would be rejected by http.client with the whole value quoted in its error message.
    value = value.strip()
    if not value:
        raise AuthError(f"{what} is empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise AuthError(f"{what} contains control characters (line breaks?); it cannot be sent "
                        "in an HTTP header")
    if not value.isascii():
        raise AuthError(f"{what} contains a non-ASCII character (a stray character pasted with "
                        "it?); HTTP header values must be ASCII")
    return value


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
        if isinstance(token, str):
            token = _clean(token, "BearerAuth token")
        elif not callable(token):
            raise AuthError("BearerAuth token must be a string or a zero-argument callable, "
                            f"not {type(token).__name__}")
        if account_id is not None:
            if not isinstance(account_id, str):
                raise AuthError("BearerAuth account_id must be a string, "
                                f"not {type(account_id).__name__}")
            account_id = _clean(account_id, "BearerAuth account_id")
        self._source = token
        self._token: str | None = token if isinstance(token, str) else None
        self.account_id = account_id
        self._lock = threading.Lock()

    def _fetch(self) -> str:
        source = self._source
        assert callable(source)
        name = getattr(source, "__qualname__", None) or type(source).__name__
        module = getattr(source, "__module__", None)
        name = f"{module}.{name}" if module and module != "builtins" else name
        try:
            value = source()
        except AuthError:
            raise
        except Exception as exc:
            raise AuthError(f"token callable {name} raised {type(exc).__name__}: {exc}"
                            ) from exc
        if not isinstance(value, str):
            raise AuthError(f"token callable {name} returned {type(value).__name__}, "
                            "expected a non-empty string")
        return _clean(value, f"the token returned by {name}")

    def token(self) -> str:
        """The current token (fetched on first use)."""
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
        kind = "str" if isinstance(self._source, str) else "callable"
        return f"BearerAuth(token=<{kind} redacted>, account_id={mask(self.account_id)})"


class AzureKeyAuth:
    """Azure OpenAI's ``api-key`` header."""

    def __init__(self, key: str) -> None:
        if not isinstance(key, str):
            raise AuthError(f"AzureKeyAuth key must be a string, not {type(key).__name__}")
        self._key = _clean(key, "AzureKeyAuth key")

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


def _account_from_id_token(id_token: Any) -> str | None:
    # Older Codex logins keep the account id only inside the id_token's claims
    # ("https://api.openai.com/auth" -> "chatgpt_account_id"). The JWT is not verified: it
    # is our own file, and the server checks the access token anyway.
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return None
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        account = claims["https://api.openai.com/auth"]["chatgpt_account_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return account if isinstance(account, str) and account else None


class CodexAuthFile:
    """Credentials from Codex's ``auth.json``: an ``OPENAI_API_KEY`` entry, or ChatGPT tokens
    (``tokens.access_token`` as bearer, ``tokens.account_id`` as ``ChatGPT-Account-ID``).
    The file is read on first use and again on :meth:`refresh` (Codex rewrites it when it
    refreshes its tokens). ``auth_mode: "chatgpt"`` prefers the tokens over a key."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else codex_home() / "auth.json"
        self._headers: dict[str, str] | None = None
        self._lock = threading.Lock()

    def _error(self, problem: str) -> AuthError:
        return AuthError(f"Codex auth file {self.path} {problem}; run `codex login` again or "
                         "set OPENAI_API_KEY")

    def _load(self) -> dict[str, str]:
        try:
            data: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise self._error("does not exist") from None
        except OSError as exc:
            raise self._error(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
        except UnicodeDecodeError:
            raise self._error("is not UTF-8 text") from None
        except ValueError as exc:
            # JSONDecodeError's message gives the position only, never the file's content.
            raise self._error(f"is not valid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise self._error(f"must hold a JSON object, not {type(data).__name__}")
        key = data.get("OPENAI_API_KEY")
        tokens = data.get("tokens")
        if tokens is not None and not isinstance(tokens, dict):
            raise self._error("has a `tokens` entry that is not an object")
        access = tokens.get("access_token") if tokens else None
        prefer_tokens = str(data.get("auth_mode", "")).lower() == "chatgpt"
        if isinstance(key, str) and key.strip() and not (prefer_tokens and access):
            return {"Authorization": f"Bearer {_clean(key, f'OPENAI_API_KEY in {self.path}')}"}
        if tokens:
            if not isinstance(access, str) or not access.strip():
                raise self._error("has `tokens` without a string `access_token`")
            out = {"Authorization": "Bearer "
                   + _clean(access, f"tokens.access_token in {self.path}")}
            account = tokens.get("account_id") or _account_from_id_token(tokens.get("id_token"))
            if isinstance(account, str) and account.strip():
                out["ChatGPT-Account-ID"] = _clean(account, f"tokens.account_id in {self.path}")
            return out
        raise self._error("has neither an OPENAI_API_KEY nor tokens.access_token")

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


# Asked after every other plugin (codexapi.dispatch.call_first puts first-party plugins last),
# so any plugin's answer wins; a plugin that returns None hands the provider to this chain.
@hookimpl
def codexapi_auth(provider: Provider) -> Any:
    """The fallback chain: the provider's own ``env_key`` variable when it names one; else env
    key (Azure's for an Azure provider), Codex auth.json, NoAuth."""
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
        return BearerAuth(_clean(value, f"the value of {env_key}"))
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
