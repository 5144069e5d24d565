"""The cassette record modes (vcrpy's), in a module of their own: the pytest plugin offers them
at every pytest start without importing the cassette machinery."""

from __future__ import annotations

#: none (replay only, network refused), once, new_episodes, all.
RECORD_MODES = ("none", "once", "new_episodes", "all")

__all__ = ["RECORD_MODES"]
