"""The plugin manager: first-party plugins, then the ``codexapi`` entry-point group, then the
plugin objects a caller passes. First-party plugins are registered exactly like third-party
ones; later registrations are called first, so a caller's plugin wins over an installed one,
and both win over a built-in. The built-ins are registered last but made ``trylast``, so a
third party's ``trylast`` impl still comes before them (see :func:`make_plugin_manager`).

Every hook is called through pluggy. To name the plugin behind a failure, each (non-wrapper)
impl's function is guarded at registration: an exception or an answer of the wrong type
becomes a :class:`PluginError` naming that impl's plugin, and an observer's exception is
logged and swallowed, while pluggy still orders the impls and runs wrappers and monitoring.

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
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import CodexApiError, PluginError
from .wires import Wire, WireRegistry

log = logging.getLogger("codexapi")

ENTRYPOINT_GROUP = "codexapi"
ENV_VAR = "CODEXAPI_PLUGINS"
DEFAULT_PLUGINS: tuple[str, ...] = (
    "codexapi.wires",
    "codexapi_plugins.wire_responses",
    "codexapi_plugins.wire_chat",
    "codexapi_plugins.wire_websocket",
    "codexapi_plugins.auth",
    "codexapi_plugins.retry",
    "codexapi_plugins.logs",
    "codexapi_plugins.otel",
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


#: Observer hooks: their exceptions are logged, never raised.
OBSERVERS = frozenset({"codexapi_on_request", "codexapi_on_response", "codexapi_on_retry",
                       "codexapi_on_stream_end", "codexapi_on_call_start",
                       "codexapi_on_call_end"})


def _is_auth(value: Any) -> bool:
    return callable(getattr(value, "auth_flow", None)) or (
        callable(getattr(value, "headers", None)) and callable(getattr(value, "refresh", None)))


def _is_delay(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: What ``codexapi_observe_stream`` may answer, from the most kept to the least.
OBSERVE_ANSWERS = ("text", "end")

#: What a hook may answer (besides None): a check and the expected type's name. Each impl's
#: answer is checked; for a hook that collects answers (not firstresult) also the list.
RESULT_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "codexapi_auth": (_is_auth, "an Auth (headers()/refresh() or auth_flow())"),
    "codexapi_endpoint_path": (lambda v: isinstance(v, str), "str"),
    "codexapi_build_body": (lambda v: isinstance(v, dict), "dict"),
    "codexapi_retry_delay": (_is_delay, "float"),
    "codexapi_observe_stream": (lambda v: v in OBSERVE_ANSWERS, '"text", "end" or None'),
}
#: The checked hooks that are not firstresult: their call answers a list.
COLLECTED = frozenset({"codexapi_observe_stream"})

#: The plugin whose hook impl is running (for ``register(wire)`` to know who registered it).
current_plugin: ContextVar[str | None] = ContextVar("codexapi_current_plugin", default=None)


def _guard(function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
    check = RESULT_TYPES.get(hook)
    observer = hook in OBSERVERS

    def guarded(*args: Any) -> Any:
        token = current_plugin.set(plugin)
        try:
            result = function(*args)
        except Exception as exc:
            if observer:
                log.warning("plugin %r raised %s in %s (ignored): %s", plugin,
                            type(exc).__name__, hook, exc, exc_info=True)
                return None
            if isinstance(exc, CodexApiError):
                raise  # a typed error the plugin meant (AuthError, UnsupportedEndpointError)
            raise PluginError(f"plugin {plugin!r} raised {type(exc).__name__} in {hook}: {exc}",
                              plugin=plugin) from exc
        finally:
            current_plugin.reset(token)
        if result is not None and check is not None and not check[0](result):
            raise PluginError(f"plugin {plugin!r} returned {type(result).__name__} from {hook}, "
                              f"expected {check[1]}", plugin=plugin)
        return result

    guarded.__wrapped__ = function  # type: ignore[attr-defined]
    return guarded


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
        self._builtin = False

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None and self._builtin:
            # Built-ins are the fallback: behind every other plugin, trylast ones included.
            opts = {**opts, "trylast": True, "tryfirst": False}
        return opts

    def register_builtin(self, plugin: Any, name: str) -> None:
        self._builtin = True
        try:
            self.register(plugin, name=name)
        finally:
            self._builtin = False
        self.origins[name] = "builtin"

    def register(self, plugin: Any, name: str | None = None) -> str | None:
        registered = super().register(plugin, name)
        if registered is not None:
            for caller in self.get_hookcallers(plugin) or []:
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin and not (impl.hookwrapper or impl.wrapper):
                        # pluggy calls ``impl.function(*args)`` (its argnames were read from
                        # the original at registration); the guard calls that same function
                        # and only adds the plugin's name to what goes wrong. (``function``
                        # is typed Final for pluggy's users; this is its one rebinding.)
                        setattr(impl, "function",  # noqa: B010
                                _guard(impl.function, registered, caller.name))
        return registered

    def call(self, hook: str, **kwargs: Any) -> Any:
        """Call ``hook`` through pluggy; a wrapper's own failure also names its plugin."""
        try:
            result = getattr(self.hook, hook)(**kwargs)
        except CodexApiError:
            raise
        except Exception as exc:
            culprit = self._wrapper_in(hook, exc)
            if hook in OBSERVERS:
                log.warning("plugin %r raised %s in %s (ignored): %s", culprit,
                            type(exc).__name__, hook, exc, exc_info=True)
                return None
            raise PluginError(f"plugin {culprit!r} raised {type(exc).__name__} in {hook}: "
                              f"{exc}", plugin=culprit) from exc
        check = RESULT_TYPES.get(hook)
        if result is not None and check is not None and not (
                check[0](result) if hook not in COLLECTED else
                isinstance(result, list) and all(map(check[0], result))):
            # Every impl's own answer was checked: a wrapper replaced it.
            culprit = ", ".join(repr(i.plugin_name) for i in self._wrappers(hook)) or "unknown"
            expected = check[1] if hook not in COLLECTED else f"a list of {check[1]}"
            raise PluginError(f"plugin {culprit} returned {type(result).__name__} from {hook} "
                              f"(through its wrapper), expected {expected}",
                              plugin=culprit.strip("'"))
        return result

    def stream_observation(self, provider: Any, request: Any,
                           extensions: dict[str, Any]) -> str | None:
        """How much of a streamed turn its end observers need (``codexapi_observe_stream``):
        ``"text"``, ``"end"``, or None when the turn is not observed."""
        ends = [*self.hook.codexapi_on_stream_end.get_hookimpls(),
                *self.hook.codexapi_on_call_end.get_hookimpls()]
        if not ends:
            return None
        askers = {id(i.plugin) for i in self.hook.codexapi_observe_stream.get_hookimpls()}
        if any(id(i.plugin) not in askers for i in ends):
            return "text"  # an observer that never said what it needs gets everything
        answers = self.call("codexapi_observe_stream", provider=provider, request=request,
                            extensions=extensions) or []
        for answer in OBSERVE_ANSWERS:
            if answer in answers:
                return answer
        return None

    def _wrappers(self, hook: str) -> list[Any]:
        return [i for i in getattr(self.hook, hook).get_hookimpls()
                if i.hookwrapper or i.wrapper]

    def _wrapper_in(self, hook: str, exc: BaseException) -> str:
        codes = {getattr(i.function, "__code__", None): i.plugin_name
                 for i in self._wrappers(hook)}
        culprit = "unknown"
        tb = exc.__traceback__
        while tb is not None:  # the innermost wrapper frame is the one that raised
            culprit = codes.get(tb.tb_frame.f_code, culprit)
            tb = tb.tb_next
        return culprit


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
        # Imported here: a Client with load_entrypoints=False never reads package metadata.
        from importlib import metadata

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
    """A plugin manager with installed plugins (optional), ``plugins`` and the built-ins.

    The built-ins are registered last and ``trylast``: pluggy asks trylast impls in reverse
    registration order too, so only this way does a third party's ``trylast`` impl still come
    before them (pluggy puts each newly registered trylast impl behind the others).
    """
    pm = PluginManager()
    builtins = {name: importlib.import_module(name) for name in DEFAULT_PLUGINS}
    builtin_ids = {id(module) for module in builtins.values()}
    if load_entrypoints:
        entries, failures = _entrypoints()
        pm.load_failures = list(failures)
        for entry in entries:
            if pm.is_registered(entry.plugin) or id(entry.plugin) in builtin_ids:
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
        if not pm.is_registered(plugin) and id(plugin) not in builtin_ids:
            _register(pm, plugin, _label(pm, plugin), "caller", None)
    for name, module in builtins.items():
        pm.register_builtin(module, name)
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
    a plugin is registered, the earlier its hooks are called; the built-ins, registered last
    and ``trylast``, are asked after every other plugin)."""
    origins = getattr(pm, "origins", {})
    dists = getattr(pm, "distributions", {})
    out = []
    for name, plugin in pm.list_name_plugin():
        hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        origin = origins.get(name, "builtin" if name in DEFAULT_PLUGINS else "caller")
        out.append({"name": name, "hooks": hooks, "builtin": origin == "builtin",
                    "origin": origin, "distribution": dists.get(name)})
    return out


def collect_wires(pm: PluginManager) -> WireRegistry:
    """Ask every plugin's ``codexapi_register_wires`` for its wires."""
    registry = WireRegistry()

    def register(wire: Wire) -> None:
        registry.register(wire, current_plugin.get())

    pm.call("codexapi_register_wires", register=register)
    return registry


def describe_wires(pm: PluginManager) -> list[dict[str, Any]]:
    """The registered wires and the plugin each comes from, sorted by name."""
    registry = collect_wires(pm)
    out = []
    for name in sorted(registry):
        plugin = registry.source(name)
        out.append({"name": name, "plugin": plugin,
                    "origin": pm.origins.get(plugin or "", "unknown"),
                    "class": f"{type(registry[name]).__module__}."
                             f"{type(registry[name]).__qualname__}"})
    return out
