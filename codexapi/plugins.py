"""The plugin manager: first-party plugins, then the ``codexapi`` entry-point group, then the
plugin objects a caller passes. First-party plugins are registered exactly like third-party
ones; later registrations are called first, so a caller's plugin wins over an installed one,
which wins over a built-in.

``CODEXAPI_PLUGINS`` limits which entry points load: unset loads all, an empty string loads
none, otherwise a comma-separated list of entry-point names (or distribution names).

An entry point that fails to import is logged (logger ``codexapi``, once per process) and
listed by ``codexapi plugins``; the host program keeps working without it. A plugin that
implements an unknown hook (a misspelt name) is a :class:`PluginError` naming it.
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


class PluginManager(pluggy.PluginManager):
    """pluggy's manager for the ``codexapi`` hooks, remembering where each plugin came from."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.add_hookspecs(hookspecs)
        #: plugin name -> "builtin", "entrypoint" or "caller"
        self.origins: dict[str, str] = {}
        #: plugin name -> distribution that installed it (entry points only)
        self.distributions: dict[str, str | None] = {}
        #: entry points that failed to import (empty when entry points were not loaded)
        self.load_failures: list[LoadFailure] = []


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
        found: set[str] = set()
        for ep in metadata.entry_points(group=ENTRYPOINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else None
            if wanted is not None and ep.name not in wanted and dist not in wanted:
                continue
            found.update(n for n in (ep.name, dist) if n)
            try:
                loaded.append(_Loaded(ep.name, dist, ep.load()))
            except Exception as exc:  # a broken plugin must not take its host program down
                failed.append(LoadFailure(ep.name, dist, f"{type(exc).__name__}: {exc}"))
                log.warning("codexapi plugin %r (from %s, %s) failed to load and is skipped: "
                            "%s: %s", ep.name, dist or "unknown distribution", ep.value,
                            type(exc).__name__, exc)
        for name in sorted((wanted or set()) - found):
            failed.append(LoadFailure(name, None, f"{ENV_VAR} names {name!r}, but no installed "
                                      f"distribution has an entry point of that name in group "
                                      f"{ENTRYPOINT_GROUP!r}"))
            log.warning("%s names %r, which no installed codexapi plugin provides",
                        ENV_VAR, name)
        _cache[selector] = (loaded, failed)
        return loaded, failed


def reset_cache() -> None:
    """Forget loaded entry points (tests, or a program that installs plugins at run time)."""
    with _lock:
        _cache.clear()


def load_failures() -> list[LoadFailure]:
    """Entry points that failed to import, for ``codexapi plugins`` and diagnostics."""
    return list(_entrypoints()[1])


def make_plugin_manager(
    plugins: Iterable[Any] = (), load_entrypoints: bool = True
) -> PluginManager:
    """A plugin manager with the built-ins, installed plugins (optional) and ``plugins``."""
    pm = PluginManager()
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
        pm.origins[name] = "builtin"
    if load_entrypoints:
        entries, failures = _entrypoints()
        pm.load_failures = list(failures)
        for entry in entries:
            if pm.is_registered(entry.plugin):
                continue
            name = entry.name
            if pm.has_plugin(name):  # two distributions chose the same entry-point name
                name = f"{entry.dist}:{entry.name}"
            _register(pm, entry.plugin, name, "entrypoint", entry.dist)
    for plugin in plugins:
        if isinstance(plugin, str):
            try:
                plugin = importlib.import_module(plugin)
            except Exception as exc:
                raise PluginError(f"plugin module {plugin!r} could not be imported: "
                                  f"{type(exc).__name__}: {exc}", plugin=plugin) from exc
        if not pm.is_registered(plugin):
            _register(pm, plugin, _label(pm, plugin), "caller", None)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"{_who(pm, exc.plugin)} implements a hook codexapi does not have "
                          f"({exc}); check the spelling against codexapi.hookspecs"
                          + _disable_hint(pm.origins.get(pm.get_name(exc.plugin) or "")),
                          plugin=pm.get_name(exc.plugin)) from None
    return pm


def _label(pm: pluggy.PluginManager, plugin: Any) -> str:
    # pluggy names an object without __name__ by its id(); errors that say
    # "plugin '140233…' returned str" help nobody, so name it after its class.
    base = getattr(plugin, "__name__", None) or (
        f"{type(plugin).__module__}.{type(plugin).__name__}()")
    name, n = base, 1
    while pm.has_plugin(name):
        n += 1
        name = f"{base}#{n}"
    return str(name)


def _who(pm: PluginManager, plugin: Any) -> str:
    name = pm.get_name(plugin) or _label(pm, plugin)
    dist = pm.distributions.get(name)
    return f"plugin {name!r}" + (f" (from distribution {dist!r})" if dist else "")


def _disable_hint(origin: str | None) -> str:
    if origin != "entrypoint":
        return ""
    return (f"; to run without it set {ENV_VAR} to the plugins you want (\"\" for none) or "
            "pass load_entrypoints=False (--no-plugins on the command line)")


def _register(pm: PluginManager, plugin: Any, name: str, origin: str, dist: str | None
              ) -> None:
    pm.origins[name] = origin
    pm.distributions[name] = dist
    try:
        pm.register(plugin, name=name)
    except (ValueError, pluggy.PluginValidationError) as exc:
        who = f"plugin {name!r}" + (f" (from distribution {dist!r})" if dist else "")
        raise PluginError(f"{who} could not be registered: {exc}{_disable_hint(origin)}",
                          plugin=name) from None


def describe(pm: pluggy.PluginManager) -> list[dict[str, Any]]:
    """Registered plugins and the hooks each implements, in registration order (the later
    a plugin is registered, the earlier its hooks are called)."""
    origins = getattr(pm, "origins", {})
    dists = getattr(pm, "distributions", {})
    out = []
    for name, plugin in pm.list_name_plugin():
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        origin = origins.get(name, "builtin" if name in DEFAULT_PLUGINS else "caller")
        out.append({"name": name, "hooks": hooks, "builtin": origin == "builtin",
                    "origin": origin, "distribution": dists.get(name)})
    return out
