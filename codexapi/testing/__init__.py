"""Testing support: cassettes (vcrpy), scrubbing, JSON matching, a pytest plugin
(``pytest11`` entry point ``codexapi``), a server that plays a cassette to any client, and
transports for tests (:class:`MockTransport`, :class:`VcrTransport`).

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
    "VcrTransport",
    "load_interactions",
    "serve_cassette",
    "use_cassette",
]
