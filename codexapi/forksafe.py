"""Fork safety: after ``os.fork()`` a child never touches a connection its parent opened.

A pooled socket inherited by a child is the parent's socket too: both would read the same
byte stream (a child reading its parent's chunk-size line, or another worker's answer). Objects
that hold pools or locks register here; in the child, right after the fork, each one drops what
it inherited (``_after_fork``) and starts afresh. Nothing inherited is closed: closing would
be harmless for the parent at the socket level, but the old pools are simply left unreferenced
by this process's clients, never used again.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from typing import Any, Protocol


class _ForkAware(Protocol):
    def _after_fork(self) -> None: ...


_registered: weakref.WeakSet[Any] = weakref.WeakSet()
#: What children inherited, kept alive so garbage collection never runs a socket's close
#: path (urllib3 or TLS teardown) on a connection the parent is still using.
_inherited: list[Any] = []


def register(obj: _ForkAware) -> None:
    """Call ``obj._after_fork()`` in every child forked from now on (while ``obj`` lives)."""
    _registered.add(obj)


def keep(obj: Any) -> None:
    """Keep an inherited object alive, unused, for the rest of the child's life."""
    _inherited.append(obj)


def _in_child() -> None:
    for obj in list(_registered):
        # The child must start whatever happens.
        with contextlib.suppress(Exception):
            obj._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)
