"""The Auth protocol. Concrete auth lives in plugins (``codexapi_plugins.auth`` and yours)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .errors import AuthError


@runtime_checkable
class Auth(Protocol):
    """Credentials for one provider.

    ``headers()`` is called for every attempt, so it must be cheap; ``refresh()`` is called once
    after a 401 and returns True when new credentials are worth a second try.
    """

    def headers(self) -> dict[str, str]: ...

    def refresh(self) -> bool: ...


def check_auth(auth: object) -> Auth:
    """``auth`` if it is an Auth; else an AuthError that never quotes it (it may be a key)."""
    if isinstance(auth, Auth):
        return auth
    hint = (" (to send an API key, pass codexapi.BearerAuth(key))"
            if isinstance(auth, str | bytes) else "")
    raise AuthError(f"auth must have headers() and refresh() methods; got a "
                    f"{type(auth).__name__}{hint}")
