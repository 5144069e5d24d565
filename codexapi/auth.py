"""The Auth protocol, and the flow every request goes through.

An auth object has either ``headers()`` / ``refresh()`` (credentials as headers, refreshed once
after a 401), or ``auth_flow(request)``, a generator in httpx's shape: it yields the request to
send (after editing ``request.headers``, a plain dict, or as a new :class:`HttpRequest`),
receives each response head (``status``, ``headers``; the body is not read), and may yield
another request (a 401 challenge answered, a refreshed token). An auth with both is used
through ``auth_flow``. Concrete auths live in :mod:`codexapi_plugins.auth` and yours.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

from .errors import AuthError, CodexApiError, ConfigError

if TYPE_CHECKING:
    from .transport import HttpRequest, HttpResponse

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
    return isinstance(name, str) and isinstance(value, str) and not any(
        ord(c) < 0x20 or ord(c) == 0x7F for c in name + value)


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

    __slots__ = ("_auth", "_base", "_gen", "_sent")

    def __init__(self, auth: Auth | FlowAuth, request: HttpRequest, state: FlowState) -> None:
        self._auth = auth
        self._base = dict(request.headers)
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
        from .transport import HttpRequest

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
        return request
