"""Plugin discovery: entry points loaded one by one, failures kept rather than fatal.

pluggy's ``load_setuptools_entrypoints`` stops at the first plugin that fails to import, which
would let one broken third-party package take the whole CLI down. We load each entry point in
isolation, record what failed, and raise only in strict mode (``ALIGNBENCH_STRICT_PLUGINS=1``).

Order is defined, so that a name clash always resolves the same way: the built-in entry points
(modules under ``alignbench_plugins``) first, then the others by distribution and entry-point name,
then ``extra`` plugins. Hooks are called in that order, so the first registration of a name wins
and each later one is rejected and recorded as a failure of the plugin that made it.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import logging
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Iterable

import pluggy

from . import hookspecs
from .errors import PluginLoadError
from .registry import PluginFailure, Registry

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "alignbench"
BUILTIN_PACKAGE = "alignbench_plugins"
STRICT_ENV = "ALIGNBENCH_STRICT_PLUGINS"
BLOCK_ENV = "ALIGNBENCH_BLOCK_PLUGINS"

HOOK_KINDS = {
    "alignbench_register_aligners": "aligner",
    "alignbench_register_datasets": "dataset",
    "alignbench_register_encoders": "encoder",
    "alignbench_register_metrics": "metric",
    "alignbench_register_perturbations": "perturbation",
}


@dataclass
class LoadedPlugins:
    """A plugin manager, where each registered plugin came from, and what failed to load.

    ``order``: the registered plugin names in the order their hooks are called.
    """

    pm: pluggy.PluginManager
    sources: dict[str, str] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    order: list[str] = field(default_factory=list)


def is_builtin(ep: importlib.metadata.EntryPoint) -> bool:
    return ep.module == BUILTIN_PACKAGE or ep.module.startswith(BUILTIN_PACKAGE + ".")


def entry_point_order(ep: importlib.metadata.EntryPoint) -> tuple:
    """Built-ins first, then by distribution name and entry-point name."""
    dist = ep.dist.metadata["Name"] if ep.dist is not None else ""
    return (not is_builtin(ep), (dist or "").lower(), ep.name, ep.value)


def make_plugin_manager(
    *, entry_points: bool = True, extra: Iterable[ModuleType | object] = (), blocked: Iterable[str] = ()
) -> LoadedPlugins:
    """A fresh plugin manager with the installed entry points and ``extra`` plugin objects.

    ``blocked`` (and ``ALIGNBENCH_BLOCK_PLUGINS``, comma-separated) names entry points to skip: an
    entry-point name skips every entry point of that name, ``distribution:name`` only that one.
    Two distributions may use the same entry-point name: both load, the later one registered with
    pluggy as ``distribution:name``.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = set(blocked) | {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}
    loaded = LoadedPlugins(pm)
    if entry_points:
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=entry_point_order):
            qualified = f"{ep.dist.metadata['Name'] if ep.dist is not None else 'unknown'}:{ep.name}"
            if ep.name in blocked or qualified in blocked:
                continue
            source = _source(ep)
            name = ep.name
            if name in loaded.sources or pm.has_plugin(name):
                log.warning("entry point %r of %s has the same name as the one of %s; both are loaded, this one "
                            "as %r", ep.name, source, loaded.sources.get(name, name), qualified)
                name = qualified
            try:
                plugin = ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - a broken plugin (even one calling sys.exit) must not break the others
                loaded.failures.append(PluginFailure(source, "import", _one_line(exc)))
                continue
            _register(loaded, plugin, name, source)
    for plugin in extra:
        name = getattr(plugin, "__name__", repr(plugin))
        if name not in blocked:
            _register(loaded, plugin, name, name)
    return loaded


def _register(loaded: LoadedPlugins, plugin: object, name: str, source: str) -> None:
    pm = loaded.pm
    try:
        pm.register(plugin, name=name)
        pm.check_pending()  # a misspelt (decorated) hook name is a failure of this plugin, caught now
    except Exception as exc:  # noqa: BLE001
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        loaded.failures.append(PluginFailure(source, "register", _one_line(exc)))
        return
    loaded.sources[name] = source
    loaded.order.append(name)
    for problem in _undecorated_hooks(plugin):
        loaded.failures.append(PluginFailure(source, "register", problem))


def _undecorated_hooks(plugin: object) -> list[str]:
    """Functions named like a hook that pluggy will never call: not decorated, or decorated under a
    misspelt name that check_pending missed. Each is one line naming the fix."""
    problems = []
    for attribute, value in sorted(vars(plugin).items() if isinstance(plugin, ModuleType) else ()):
        if not attribute.startswith(hookspecs.PROJECT + "_") or not inspect.isfunction(value):
            continue
        if getattr(value, hookspecs.PROJECT + "_impl", None) is not None:
            continue
        closest = difflib.get_close_matches(attribute, HOOK_KINDS, n=1)
        if attribute in HOOK_KINDS:
            problems.append(f"{attribute} is not decorated with @alignbench.hookimpl, so it is never called")
        else:
            hint = f"did you mean {closest[0]}? " if closest else ""
            problems.append(f"{attribute} is not an alignbench hook ({hint}hooks: {', '.join(HOOK_KINDS)})")
    return problems


def _source(ep: importlib.metadata.EntryPoint) -> str:
    dist = ep.dist
    package = f"{dist.metadata['Name']} {dist.version}" if dist is not None else "unknown package"
    return f"{package} [{ep.name}]"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def load_registry(
    *, entry_points: bool = True, extra: Iterable[ModuleType | object] = (), strict: bool | None = None
) -> Registry:
    """Every registered component, by calling each plugin's hooks one plugin at a time.

    One plugin's failing hook is recorded as that plugin's failure and leaves the others intact;
    a name registered twice keeps the first registration (built-ins come first).
    """
    loaded = make_plugin_manager(entry_points=entry_points, extra=extra)
    registry = Registry(failures=loaded.failures)
    position = {name: i for i, name in enumerate(loaded.order)}
    for hook_name, kind in HOOK_KINDS.items():
        caller = getattr(loaded.pm.hook, hook_name)
        # Our own order, not pluggy's (which calls the last registered first, and honours tryfirst).
        for impl in sorted(caller.get_hookimpls(), key=lambda i: position.get(i.plugin_name, len(position))):
            source = loaded.sources.get(impl.plugin_name, impl.plugin_name)
            try:
                impl.function(register=registry.registrar(kind, source))
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - including a plugin's sys.exit()
                registry.failures.append(PluginFailure(source, hook_name, _one_line(exc)))
    if strict is None:
        strict = os.environ.get(STRICT_ENV, "") not in ("", "0", "false")
    if strict and registry.failures:
        lines = "; ".join(f"{f.source} ({f.stage}): {f.error}" for f in registry.failures)
        raise PluginLoadError(f"plugins failed to load (strict mode, {STRICT_ENV} is set): {lines}")
    return registry
