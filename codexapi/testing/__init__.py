"""Testing support: cassettes (vcrpy), scrubbing, JSON matching, a pytest plugin
(``pytest11`` entry point ``codexapi``), a server that plays a cassette to any client, a
recording proxy that writes one from any client's traffic, and transports for tests
(:class:`MockTransport`, :class:`VcrTransport`).

See docs/testing.md. vcrpy and PyYAML come with ``pip install 'codexapi[cassettes]'``.
"""

from __future__ import annotations

from .cassette import RECORD_MODES, CassetteHandle, use_cassette
from .errors import (
    CassetteError,
    CorruptCassetteError,
    NetworkBlockedError,
    NoMatchingInteractionError,
)
from .formats import Interaction, load_interactions
from .player import CassettePlayer, serve_cassette
from .recorder import Recorder, record_server
from .transport import MockResponse, MockTransport, VcrTransport

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
