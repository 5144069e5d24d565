"""The plugin manager: first-party plugins, then the ``codexapi`` entry-point group, then the
plugin objects a caller passes. First-party plugins are registered exactly like third-party
ones; later registrations are called first, so a caller's plugin wins over an installed one,
which wins over a built-in.

``CODEXAPI_PLUGINS`` limits which entry points load: unset loads all, an empty string loads
none, otherwise a comma-separated list of entry-point names (or distribution names).
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from collections.abc import Iterable
from importlib import metadata
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import PluginError

log = logging.getLogger("codexapi")

ENTRYPOINT_GROUP = "codexapi"
ENV_VAR = "CODEXAPI_PLUGINS"
DEFAULT_PLUGINS: tuple[str, ...] = (
    "codexapi_plugins.wire_responses",
    "codexapi_plugins.wire_chat",
    "codexapi_plugins.auth",
    "codexapi_plugins.retry",
    "codexapi_plugins.logs",
)


@attrs.frozen
class LoadFailure:
    """An entry point that could not be loaded, and why."""

    name: str
    dist: str | None
    error: str


@attrs.frozen
class _Loaded:
    name: str
    dist: str | None
    plugin: Any


_lock = threading.Lock()
_cache: dict[str | None, tuple[list[_Loaded], list[LoadFailure]]] = {}


def _entrypoints() -> tuple[list[_Loaded], list[LoadFailure]]:
    """Import the entry-point plugins once per process (per value of ``CODEXAPI_PLUGINS``)."""
    selector = os.environ.get(ENV_VAR)
    with _lock:
        if selector in _cache:
            return _cache[selector]
        wanted = None if selector is None else {s.strip() for s in selector.split(",") if s.strip()}
        loaded: list[_Loaded] = []
        failed: list[LoadFailure] = []
        for ep in metadata.entry_points(group=ENTRYPOINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else None
            if wanted is not None and ep.name not in wanted and dist not in wanted:
                continue
            try:
                loaded.append(_Loaded(ep.name, dist, ep.load()))
            except Exception as exc:  # a broken plugin must not take its host program down
                failed.append(LoadFailure(ep.name, dist, f"{type(exc).__name__}: {exc}"))
                log.warning("codexapi plugin %r (from %s) failed to load: %s: %s",
                            ep.name, dist or "unknown distribution", type(exc).__name__, exc)
        _cache[selector] = (loaded, failed)
        return loaded, failed


def reset_cache() -> None:
    """Forget loaded entry points (tests that install plugins at run time)."""
    with _lock:
        _cache.clear()


def load_failures() -> list[LoadFailure]:
    """Entry points that failed to import, for ``codexapi plugins`` and diagnostics."""
    return list(_entrypoints()[1])


def make_plugin_manager(
    plugins: Iterable[Any] = (), load_entrypoints: bool = True
) -> pluggy.PluginManager:
    """A plugin manager with the built-ins, installed plugins (optional) and ``plugins``."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if load_entrypoints:
        for entry in _entrypoints()[0]:
            if pm.is_registered(entry.plugin):
                continue
            _register(pm, entry.plugin, entry.name)
    for plugin in plugins:
        if isinstance(plugin, str):
            plugin = importlib.import_module(plugin)
        if not pm.is_registered(plugin):
            _register(pm, plugin, None)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin {exc.plugin!r} implements an unknown hook: {exc}",
                          plugin=str(exc.plugin)) from None
    return pm


def _register(pm: pluggy.PluginManager, plugin: Any, name: str | None) -> None:
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        label = name or getattr(plugin, "__name__", type(plugin).__name__)
        raise PluginError(f"plugin {label!r} could not be registered: {exc}",
                          plugin=label) from None


def describe(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """Registered plugins and the hooks each implements, in call priority order."""
    out = []
    for name, plugin in pm.list_name_plugin():
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        dist = None
        for dist_info, p in pm.list_plugin_distinfo():
            if p is plugin:
                dist = str(getattr(dist_info, "project_name", None) or "") or None
        out.append({"name": name, "hooks": hooks, "builtin": name in DEFAULT_PLUGINS,
                    "distribution": dist})
    return out
