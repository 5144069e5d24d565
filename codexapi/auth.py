"""The Auth protocol. Concrete auth lives in plugins (``codexapi_plugins.auth`` and yours)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class Auth(Protocol):
    """Credentials for one provider.

    ``headers()`` is called for every attempt, so it must be cheap; ``refresh()`` is called once
    after a 401 and returns True when new credentials are worth a second try.
    """

    def headers(self) -> dict[str, str]: ...

    def refresh(self) -> bool: ...
