"""Codex's ``auth.json``: an API key, or ChatGPT sign-in tokens that refresh themselves.

With ChatGPT tokens, :class:`CodexAuthFile` refreshes the access token as Codex does
(codex-rs ``login/src/auth/manager.rs``): when its JWT ``exp`` is past (less a small skew),
or after the server answered 401, it posts the refresh token to the OAuth token endpoint and
writes the new tokens back to the file. Several threads and several processes may share one
file, and a refresh token is good for one refresh only (a second use is
``refresh_token_reused``), so the refresh runs under a thread lock and a lock file beside
``auth.json``; under both it reads the file again first, and when another process already
wrote new tokens there it uses them and sends nothing. N threads in M processes needing a
refresh at once cause one token request.

A refresh the token endpoint refuses for good (a 401, ``refresh_token_expired``,
``refresh_token_reused``, ``refresh_token_invalidated``) is an :class:`AuthError` that says to
run ``codex login``; it is remembered for that refresh token, so later calls fail at once
without sending it again. A 5xx, a timeout or a network failure is a :class:`TransportError`,
which the call's retry policy retries like any other. Tokens never appear in a log, an error
or a repr.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from . import forksafe
from .auth import RenewingAuth, checked_secret
from .errors import AuthError, ConfigError, DeadlineExceeded, TransportError
from .redact import scrub_text

if TYPE_CHECKING:
    from .http.transport import Transport

log = logging.getLogger("codexapi.auth")

#: Where Codex refreshes ChatGPT tokens, and the variable that moves it (as in Codex).
REFRESH_TOKEN_URL = "https://auth.openai.com/oauth/token"
REFRESH_TOKEN_URL_ENV = "CODEX_REFRESH_TOKEN_URL_OVERRIDE"
#: The OAuth client id of the Codex CLI.
CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
#: An access token is refreshed this many seconds before its ``exp``, so that it does not
#: expire between being read and reaching the server (or on a server with a fast clock).
EXPIRY_SKEW = 30.0
#: The longest wait for another thread or process to finish its refresh, in seconds.
LOCK_WAIT = 30.0
#: (connect, head, idle) seconds for the token request, each cut to the call's deadline.
REFRESH_TIMEOUT = (10.0, 30.0, 30.0)
#: The largest token endpoint answer read (tokens are a few KiB).
MAX_TOKEN_RESPONSE = 1024 * 1024
#: The claims Codex reads from the id token.
AUTH_CLAIMS = "https://api.openai.com/auth"
FEDRAMP_HEADER = "X-OpenAI-Fedramp"

#: Why a refresh was refused for good, by the token endpoint's error code.
_REFUSED = {
    "refresh_token_expired": "your refresh token has expired",
    "refresh_token_reused": "your refresh token was already used (by another Codex session "
                            "that did not save what it got back?)",
    "refresh_token_invalidated": "your refresh token was revoked",
}


def codex_home() -> Path:
    """``$CODEX_HOME``, default ``~/.codex``."""
    home = os.environ.get("CODEX_HOME")
    return Path(home).expanduser() if home else Path.home() / ".codex"


def jwt_claims(token: Any) -> dict[str, Any] | None:
    """The claims of a JWT, unverified, or None when ``token`` is not one.

    Nothing here is trusted for security: the file is the user's own and the server checks
    every token it gets. The claims only say when to refresh and which headers to send.
    """
    if not isinstance(token, str) or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def _auth_claims(id_token: Any) -> dict[str, Any]:
    claims = (jwt_claims(id_token) or {}).get(AUTH_CLAIMS)
    return claims if isinstance(claims, dict) else {}


def _expires_at(access_token: str) -> float | None:
    exp = (jwt_claims(access_token) or {}).get("exp")
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    return float(exp)


@attrs.frozen
class _Credentials:
    """What one reading of ``auth.json`` gives."""

    headers: dict[str, str]
    #: The refresh token, when the file holds ChatGPT tokens that can be refreshed.
    refresh_token: str | None = None
    #: The access token's ``exp`` (epoch seconds), when it is a JWT that says.
    expires_at: float | None = None
    #: Every credential in the file, for scrubbing what a server echoes.
    secrets: tuple[str, ...] = ()

    def stale(self, now: float) -> bool:
        return (self.refresh_token is not None and self.expires_at is not None
                and self.expires_at - EXPIRY_SKEW <= now)


class CodexAuthFile(RenewingAuth):
    """Credentials from Codex's ``auth.json``: an ``OPENAI_API_KEY`` entry, or ChatGPT tokens
    (``tokens.access_token`` as bearer, ``tokens.account_id`` as ``ChatGPT-Account-ID``,
    ``X-OpenAI-Fedramp: true`` for a FedRAMP account). ``auth_mode: "chatgpt"`` prefers the
    tokens over a key.

    The file is read on first use. ChatGPT tokens are refreshed when the access token expires
    or the server answers 401, and written back (see the module's documentation); after a 401
    an API key is read again (Codex may have written a new one). ``transport`` sends the token
    request (default: a :class:`~codexapi.http.urllib3_transport.Urllib3Transport` following the
    proxy and CA environment variables).
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 transport: Transport | None = None) -> None:
        self.path = Path(path) if path is not None else codex_home() / "auth.json"
        self._transport = transport
        self._credentials: _Credentials | None = None
        # (refresh token, error message) of a refresh the endpoint refused for good.
        self._refused: tuple[str, str] | None = None
        self._lock = threading.Lock()
        forksafe.register(self)

    def _after_fork(self) -> None:
        # Another thread of the parent may have held it at the moment of the fork.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CodexAuthFile(path={str(self.path)!r})"

    # --- RenewingAuth ------------------------------------------------------------------------
    def current(self, budget: float | None) -> dict[str, str]:
        with self._locked(budget):
            held = self._credentials
            if held is None:
                held = self._credentials = self._parse(self._read())
            if held.stale(time.time()):
                self._renew(held, budget, "it expired")
            assert self._credentials is not None
            return dict(self._credentials.headers)

    def renew(self, refused: Mapping[str, str] | None, budget: float | None) -> bool:
        with self._locked(budget):
            held = self._credentials
            if held is None:
                self._credentials = self._parse(self._read())
                return True
            if refused is not None and dict(refused) != held.headers:
                return True  # another thread renewed them while this one waited
            return self._renew(held, budget, "the server answered 401")

    # --- the refresh ---------------------------------------------------------------------------
    @contextmanager
    def _locked(self, budget: float | None) -> Iterator[None]:
        if not self._lock.acquire(timeout=_wait(budget)):
            raise TransportError(f"timed out waiting for another thread to refresh the tokens "
                                 f"of {self.path}")
        try:
            yield
        finally:
            self._lock.release()

    def _renew(self, held: _Credentials, budget: float | None, why: str) -> bool:
        """Under the thread lock: refresh ``held`` unless the file already has newer
        credentials. True when the credentials changed."""
        from .locking import file_lock

        lock = self.path.with_name(self.path.name + ".lock")
        try:
            with file_lock(lock, _wait(budget)):
                data = self._read()
                disk = self._parse(data)
                if disk.headers != held.headers:
                    # Another process refreshed (or `codex login` ran): use what it wrote.
                    log.info("using the credentials another process wrote to %s", self.path)
                    self._credentials = disk
                    if not disk.stale(time.time()):
                        return True
                if disk.refresh_token is None:
                    self._credentials = disk
                    return disk.headers != held.headers
                log.info("refreshing the ChatGPT access token of %s (%s)", self.path, why)
                tokens = self._request(disk.refresh_token, budget, disk.secrets)
                stored = data.get("tokens")
                data["tokens"] = {**(stored if isinstance(stored, dict) else {}), **tokens}
                data["last_refresh"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
                self._write(data)
                self._credentials = self._parse(data)
                return True
        except TimeoutError:
            raise TransportError(f"timed out waiting for another process to refresh the tokens "
                                 f"of {self.path} (it holds {lock})") from None
        except OSError as exc:
            raise self._error(f"cannot be locked for a token refresh: {lock}: "
                              f"{exc.strerror or type(exc).__name__}") from None

    def _request(self, refresh_token: str, budget: float | None,
                 secrets: tuple[str, ...]) -> dict[str, str]:
        """Post the refresh token; the new tokens, or the error the answer means."""
        from .http.transport import BufferedResponse, HttpRequest, streaming
        from .http.urllib3_transport import Urllib3Transport

        if self._refused is not None and self._refused[0] == refresh_token:
            raise AuthError(self._refused[1])
        url = os.environ.get(REFRESH_TOKEN_URL_ENV, "").strip() or REFRESH_TOKEN_URL
        body = json.dumps({"client_id": CLIENT_ID, "grant_type": "refresh_token",
                           "refresh_token": refresh_token}).encode()
        timeout = REFRESH_TIMEOUT if budget is None else tuple(
            min(t, max(budget, 0.001)) for t in REFRESH_TIMEOUT)
        request = HttpRequest("POST", url, {"Content-Type": "application/json",
                                            "Accept": "application/json"}, body,
                              timeout=timeout, deadline=budget)
        transport = streaming(self._transport) if self._transport else Urllib3Transport()
        try:
            response = BufferedResponse.read_from(transport.send(request), MAX_TOKEN_RESPONSE,
                                                  MAX_TOKEN_RESPONSE)
            status, raw = response.status, response.read()
        except DeadlineExceeded:
            raise
        except TransportError as exc:
            raise TransportError(f"refreshing the ChatGPT access token at {url} failed: "
                                 f"{scrub_text(exc.message, secrets)}", url=url) from None
        except ConfigError:
            raise
        except Exception as exc:  # e.g. the answer passed MAX_TOKEN_RESPONSE
            raise TransportError(f"refreshing the ChatGPT access token at {url} failed: "
                                 f"{type(exc).__name__}", url=url) from None
        finally:
            if self._transport is None:
                transport.close()
        try:
            data = json.loads(raw) if raw.strip() else None
        except ValueError:
            data = None
        if 200 <= status < 300:
            tokens = {k: data[k] for k in ("access_token", "refresh_token", "id_token")
                      if isinstance(data, dict) and isinstance(data.get(k), str) and data[k]}
            if "access_token" not in tokens:
                raise TransportError(f"the token endpoint {url} answered {status} without an "
                                     "access_token", url=url)
            return tokens
        code, message = _error_of(data)
        message = scrub_text(message, (refresh_token, *secrets))[:200]
        if status == 401 or code in _REFUSED:
            reason = _REFUSED.get(code or "", "the token endpoint refused your refresh token")
            text = (f"the ChatGPT access token in {self.path} could not be refreshed: {reason}; "
                    "run `codex login` to sign in again")
            self._refused = (refresh_token, text)
            raise AuthError(text)
        detail = f"{status}" + (f" ({code})" if code else "") + (f": {message}" if message else "")
        if status in (408, 425, 429) or status >= 500:
            raise TransportError(f"the token endpoint {url} answered {detail}", url=url)
        raise AuthError(f"the ChatGPT access token in {self.path} could not be refreshed: the "
                        f"token endpoint {url} answered {detail}; run `codex login` to sign in "
                        "again")

    def _write(self, data: dict[str, Any]) -> None:
        """Replace the file atomically (a temporary file renamed over it), keeping its mode.
        A failure is logged, not raised: the new tokens are in memory, and the call goes on."""
        import tempfile

        try:
            mode = self.path.stat().st_mode & 0o7777
        except OSError:
            mode = 0o600
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                       dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                if hasattr(os, "fchmod"):
                    os.fchmod(file.fileno(), mode)
                file.write(json.dumps(data, indent=2) + "\n")
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)
            tmp = None
        except OSError as exc:
            log.warning("could not save the refreshed tokens to %s: %s", self.path,
                        exc.strerror or type(exc).__name__)
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)

    # --- reading the file ----------------------------------------------------------------------
    def _error(self, problem: str) -> AuthError:
        return AuthError(f"Codex auth file {self.path} {problem}; run `codex login` again or "
                         "set OPENAI_API_KEY")

    def _read(self) -> dict[str, Any]:
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
        return data

    def _parse(self, data: dict[str, Any]) -> _Credentials:
        key = data.get("OPENAI_API_KEY")
        tokens = data.get("tokens")
        if tokens is not None and not isinstance(tokens, dict):
            raise self._error("has a `tokens` entry that is not an object")
        access = tokens.get("access_token") if tokens else None
        prefer_tokens = str(data.get("auth_mode", "")).lower() == "chatgpt"
        if isinstance(key, str) and key.strip() and not (prefer_tokens and access):
            key = checked_secret(key, f"OPENAI_API_KEY in {self.path}")
            return _Credentials({"Authorization": f"Bearer {key}"}, secrets=(key,))
        if not tokens:
            raise self._error("has neither an OPENAI_API_KEY nor tokens.access_token")
        if not isinstance(access, str) or not access.strip():
            raise self._error("has `tokens` without a string `access_token`")
        access = checked_secret(access, f"tokens.access_token in {self.path}")
        headers = {"Authorization": f"Bearer {access}"}
        claims = _auth_claims(tokens.get("id_token"))
        # Older Codex logins keep the account id only inside the id token's claims.
        account = tokens.get("account_id") or claims.get("chatgpt_account_id")
        if isinstance(account, str) and account.strip():
            headers["ChatGPT-Account-ID"] = checked_secret(
                account, f"tokens.account_id in {self.path}")
        if claims.get("chatgpt_account_is_fedramp") is True:
            headers[FEDRAMP_HEADER] = "true"
        refresh = tokens.get("refresh_token")
        refresh = refresh if isinstance(refresh, str) and refresh.strip() else None
        secrets = tuple(v for v in (access, refresh, tokens.get("id_token"))
                        if isinstance(v, str) and v)
        return _Credentials(headers, refresh, _expires_at(access), secrets)


def _wait(budget: float | None) -> float:
    return LOCK_WAIT if budget is None else max(0.0, min(LOCK_WAIT, budget))


def _error_of(data: Any) -> tuple[str | None, str]:
    """The error code and message of a token endpoint answer (OAuth's ``error`` /
    ``error_description``, or OpenAI's ``{"error": {"code", "message"}}``)."""
    if not isinstance(data, dict):
        return None, ""
    error = data.get("error")
    if isinstance(error, dict):
        code, message = error.get("code") or error.get("type"), error.get("message")
    else:
        code, message = error if isinstance(error, str) else data.get("code"), (
            data.get("error_description") or data.get("message"))
    return (code.lower() if isinstance(code, str) else None,
            message if isinstance(message, str) else "")


__all__ = ["CLIENT_ID", "REFRESH_TOKEN_URL", "REFRESH_TOKEN_URL_ENV", "CodexAuthFile",
           "codex_home", "jwt_claims"]
