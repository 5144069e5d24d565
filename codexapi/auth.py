"""The Auth protocol, and the flow every request goes through.

An auth object has either ``headers()`` / ``refresh()`` (credentials as headers, refreshed once
after a 401), or ``auth_flow(request)``, a generator in httpx's shape: it yields the request to
send (after editing ``request.headers``, a plain dict, or as a new :class:`HttpRequest`),
receives each response head (``status``, ``headers``; the body is not read), and may yield
another request (a 401 challenge answered, a refreshed token). An auth with both is used
through ``auth_flow``.

The auths that ship: :class:`NoAuth`, :class:`BearerAuth` (a token or a callable that fetches
one), :class:`AzureKeyAuth`, and two that renew expiring credentials themselves on the
:class:`RenewingAuth` base: ``CodexAuthFile`` (Codex's ``auth.json``, :mod:`codexapi.auth_file`)
and ``CommandAuth`` (a token command, :mod:`codexapi.command_auth`). Reprs never show secrets,
and no error raised here quotes a credential. Which one a Client uses when the caller passes
none is decided by the ``codexapi_auth`` hook (the built-in fallback chain is
``codexapi_plugins.auth``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

from .errors import AuthError, CodexApiError, ConfigError
from .http.headers import has_control
from .redact import mask

if TYPE_CHECKING:
    from .http.transport import HttpRequest, HttpResponse

#: How many requests one auth flow may send for a single attempt (a challenge, a refresh...):
#: a flow that keeps answering would otherwise loop forever.
MAX_FLOW_REQUESTS = 5

AuthFlow = Generator["HttpRequest", "HttpResponse", None]


@runtime_checkable
class Auth(Protocol):
    """Credentials for one provider, as headers.

    ``headers()`` is called for every attempt, so it must be cheap; ``refresh()`` is called once
    after a 401 and returns True when new credentials are worth a second try.
    """

    def headers(self) -> dict[str, str]: ...

    def refresh(self) -> bool: ...


@runtime_checkable
class FlowAuth(Protocol):
    """Credentials computed per request, seeing each response head (httpx's ``Auth`` shape)."""

    def auth_flow(self, request: HttpRequest) -> AuthFlow: ...


def check_auth(auth: object) -> Auth | FlowAuth:
    """``auth`` if it is an auth; else an AuthError that never quotes it (it may be a key)."""
    if isinstance(auth, FlowAuth | Auth):
        return auth
    hint = (" (to send an API key, pass codexapi.BearerAuth(key))"
            if isinstance(auth, str | bytes) else "")
    raise AuthError(f"auth must have headers() and refresh() methods, or auth_flow(); got a "
                    f"{type(auth).__name__}{hint}")


def _name(auth: object) -> str:
    return type(auth).__name__


def auth_headers(auth: Auth) -> dict[str, str]:
    """``auth.headers()``, checked: strings without line breaks (http.client would reject a bad
    value quoting it, a credential, in its error message)."""
    try:
        headers = auth.headers()
    except CodexApiError:
        raise
    except Exception as exc:
        raise AuthError(f"{_name(auth)}.headers() raised {type(exc).__name__}: {exc}") from None
    if not isinstance(headers, Mapping):
        raise AuthError(f"{_name(auth)}.headers() returned {type(headers).__name__}, expected "
                        "a dict")
    for name, value in headers.items():
        if not _valid(name, value):
            raise AuthError(f"{_name(auth)}.headers() returned an invalid value for header "
                            f"{str(name)[:40]!r}: header names and values must be strings "
                            "without line breaks")
    return dict(headers)


def _valid(name: object, value: object) -> bool:
    return (isinstance(name, str) and isinstance(value, str) and not has_control(name)
            and not has_control(value))


@attrs.define
class FlowState:
    """What one call's flows remember across its attempts (a header auth refreshes once)."""

    refreshed: bool = False


def headers_flow(auth: Auth, request: HttpRequest, state: FlowState) -> AuthFlow:
    """The flow of a ``headers()`` / ``refresh()`` auth: send with its headers; after a 401,
    ``refresh()`` once per call and, if it found new credentials, send again."""
    base = dict(request.headers)
    request.headers.update(auth_headers(auth))
    response = yield request
    if response.status != 401 or state.refreshed:
        return
    state.refreshed = True
    try:
        fresh = bool(auth.refresh())
    except CodexApiError:
        raise
    except Exception as exc:
        raise AuthError(f"{_name(auth)}.refresh() raised {type(exc).__name__}: {exc}") from None
    if fresh:
        # A refreshed credential is a new request, not a retry of a failure.
        yield attrs.evolve(request, headers={**base, **auth_headers(auth)})


class Flow:
    """Runs one attempt's auth flow: ``first()`` the request to send, then ``answer(response)``
    the next request to send or None. Errors an auth raises become AuthError naming it."""

    __slots__ = ("_auth", "_base", "_gen", "_limits", "_sent")

    def __init__(self, auth: Auth | FlowAuth, request: HttpRequest, state: FlowState) -> None:
        self._auth = auth
        self._base = dict(request.headers)
        self._limits = (request.deadline, request.max_body, request.max_decompressed)
        self._sent = 0
        if isinstance(auth, FlowAuth):
            try:
                self._gen = auth.auth_flow(request)
            except CodexApiError:
                raise
            except Exception as exc:
                raise AuthError(f"{_name(auth)}.auth_flow() raised {type(exc).__name__}: "
                                f"{exc}") from None
        else:
            self._gen = headers_flow(auth, request, state)

    def first(self) -> HttpRequest:
        request = self._step(None)
        if request is None:
            raise AuthError(f"{_name(self._auth)}.auth_flow() yielded no request to send")
        return request

    def answer(self, response: HttpResponse) -> HttpRequest | None:
        return self._step(response)

    def close(self) -> None:
        self._gen.close()

    def _step(self, response: HttpResponse | None) -> HttpRequest | None:
        from .http.transport import HttpRequest

        try:
            request = next(self._gen) if response is None else self._gen.send(response)
        except StopIteration:
            return None
        except CodexApiError:
            raise
        except Exception as exc:
            raise AuthError(f"{_name(self._auth)}.auth_flow() raised {type(exc).__name__}: "
                            f"{exc}") from None
        if not isinstance(request, HttpRequest):
            raise AuthError(f"{_name(self._auth)}.auth_flow() yielded "
                            f"{type(request).__name__}, expected an HttpRequest")
        self._sent += 1
        if self._sent > MAX_FLOW_REQUESTS:
            raise AuthError(f"{_name(self._auth)}.auth_flow() sent {MAX_FLOW_REQUESTS} requests "
                            "for one attempt and asks for more; giving up")
        for name, value in request.headers.items():
            if not _valid(name, value):
                problem = (f"header {str(name)[:40]!r} has an invalid value (header names and "
                           "values must be strings without line breaks)")
                if name in self._base and self._base[name] == value:
                    raise ConfigError(problem)  # the caller's or the provider's header
                raise AuthError(f"{_name(self._auth)} set {problem}")
        if (request.deadline, request.max_body, request.max_decompressed) != self._limits:
            # A flow that builds a new HttpRequest still sends it under the call's deadline
            # and the provider's size bounds.
            deadline, max_body, max_decompressed = self._limits
            request = attrs.evolve(request, deadline=deadline, max_body=max_body,
                                   max_decompressed=max_decompressed)
        return request


# --- the auths that ship ---------------------------------------------------------------

Token = str | Callable[[], str]


def checked_secret(value: str, what: str) -> str:
    """``value`` stripped; an AuthError (naming ``what``, never the value) when it is empty or
    holds control characters."""
    # Token files and vault CLIs often end in a newline; a line break inside a header value
    # would be rejected by http.client with the whole value quoted in its error message.
    value = value.strip()
    if not value:
        raise AuthError(f"{what} is empty")
    if has_control(value):
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
            token = checked_secret(token, "BearerAuth token")
        elif not callable(token):
            raise AuthError("BearerAuth token must be a string or a zero-argument callable, "
                            f"not {type(token).__name__}")
        if account_id is not None:
            if not isinstance(account_id, str):
                raise AuthError("BearerAuth account_id must be a string, "
                                f"not {type(account_id).__name__}")
            account_id = checked_secret(account_id, "BearerAuth account_id")
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
        return checked_secret(value, f"the token returned by {name}")

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
        self._key = checked_secret(key, "AzureKeyAuth key")

    def headers(self) -> dict[str, str]:
        return {"api-key": self._key}

    def refresh(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "AzureKeyAuth(key=<redacted>)"


class RenewingAuth:
    """Base of the auths whose credentials expire and that renew them themselves.

    A subclass says what its headers are now (:meth:`current`, renewing first when it knows
    they are stale: an expired JWT, a cached token past its age) and how to renew them after
    the server refused them (:meth:`renew`, given the headers it refused, so that when several
    callers were refused the same credentials only the first renews and the others use its
    result). Both take ``budget``: the seconds left of the call (its ``deadline=``), or None.

    It is used through :meth:`auth_flow` (which sees each call's deadline and which headers
    went out); :meth:`headers` / :meth:`refresh` serve code that drives an :class:`Auth` by
    hand.
    """

    def current(self, budget: float | None) -> dict[str, str]:
        raise NotImplementedError

    def renew(self, refused: Mapping[str, str] | None, budget: float | None) -> bool:
        """After a 401 to ``refused`` (None: whatever is current): True when there are other
        credentials worth one more try."""
        raise NotImplementedError

    def auth_flow(self, request: HttpRequest) -> AuthFlow:
        base = dict(request.headers)
        sent = self._issue(request.deadline)
        request.headers.update(sent)
        response = yield request
        if response.status == 401 and self.renew(sent, request.deadline):
            # A renewed credential is a new request of the same attempt, not a retry.
            yield attrs.evolve(request, headers={**base, **self._issue(request.deadline)})

    def headers(self) -> dict[str, str]:
        return self._issue(None)

    def refresh(self) -> bool:
        return self.renew(None, None)

    def issued_headers(self) -> dict[str, str]:
        """The headers this auth last handed out, without renewing anything (what an error
        found later must be scrubbed of); empty before the first."""
        return dict(getattr(self, "_issued", {}))

    def _issue(self, budget: float | None) -> dict[str, str]:
        headers = self.current(budget)
        self._issued = dict(headers)
        return headers
