"""Testing support: cassettes (vcrpy), scrubbing, JSON matching, a pytest plugin
(``pytest11`` entry point ``codexapi``), a server that plays a cassette to any client, a
recording proxy that writes one from any client's traffic, and transports for tests
(:class:`MockTransport`, :class:`VcrTransport`).

See docs/testing.md. vcrpy and PyYAML come with ``pip install 'codexapi[cassettes]'``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cassette import CassetteHandle, use_cassette
    from .errors import (
        CassetteError,
        CorruptCassetteError,
        NetworkBlockedError,
        NoMatchingInteractionError,
    )
    from .formats import Interaction, load_interactions
    from .modes import RECORD_MODES
    from .player import CassettePlayer, serve_cassette
    from .recorder import Recorder, record_server
    from .transport import MockResponse, MockTransport, VcrTransport

# Each name is imported from its module when first used (PEP 562): the pytest plugin lives in
# this package, and a pytest run that uses no cassette must not pay for the client, the server
# or vcrpy.
_WHERE = {
    "RECORD_MODES": "modes", "CassetteHandle": "cassette", "use_cassette": "cassette",
    "CassetteError": "errors", "CorruptCassetteError": "errors",
    "NetworkBlockedError": "errors", "NoMatchingInteractionError": "errors",
    "Interaction": "formats", "load_interactions": "formats", "CassettePlayer": "player",
    "serve_cassette": "player", "Recorder": "recorder", "record_server": "recorder",
    "MockResponse": "transport", "MockTransport": "transport",
    "VcrTransport": "transport",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_WHERE])


__all__ = [
    "RECORD_MODES",
    "CassetteError",
    "CassetteHandle",
    "CassettePlayer",
    "CorruptCassetteError",
    "Interaction",
    "MockResponse",
    "MockTransport",
    "NetworkBlockedError",
    "NoMatchingInteractionError",
    "Recorder",
    "VcrTransport",
    "load_interactions",
    "record_server",
    "serve_cassette",
    "use_cassette",
]
