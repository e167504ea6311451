"""Plugin discovery: entry points loaded one by one, failures kept rather than fatal.

pluggy's ``load_setuptools_entrypoints`` stops at the first plugin that fails to import, which
would let one broken third-party package take the whole CLI down. We load each entry point in
isolation, record what failed, and raise only in strict mode (``ALIGNBENCH_STRICT_PLUGINS=1``).
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Iterable

import pluggy

from . import hookspecs
from .errors import PluginLoadError
from .registry import PluginFailure, Registry

ENTRY_POINT_GROUP = "alignbench"
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
    """A plugin manager, where each registered plugin came from, and what failed to load."""

    pm: pluggy.PluginManager
    sources: dict[str, str] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)


def make_plugin_manager(
    *, entry_points: bool = True, extra: Iterable[ModuleType | object] = (), blocked: Iterable[str] = ()
) -> LoadedPlugins:
    """A fresh plugin manager with the installed entry points and ``extra`` plugin objects.

    ``blocked`` (and ``ALIGNBENCH_BLOCK_PLUGINS``, comma-separated) names entry points to skip.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = set(blocked) | {n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()}
    for name in blocked:
        pm.set_blocked(name)
    loaded = LoadedPlugins(pm)
    if entry_points:
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if pm.is_blocked(ep.name) or pm.has_plugin(ep.name):
                continue
            source = _source(ep)
            try:
                plugin = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the others
                loaded.failures.append(PluginFailure(source, "import", f"{type(exc).__name__}: {exc}"))
                continue
            _register(loaded, plugin, ep.name, source)
    for plugin in extra:
        name = getattr(plugin, "__name__", repr(plugin))
        _register(loaded, plugin, name, name)
    return loaded


def _register(loaded: LoadedPlugins, plugin: object, name: str, source: str) -> None:
    pm = loaded.pm
    try:
        pm.register(plugin, name=name)
        pm.check_pending()  # a misspelt hook name is a failure of this plugin, caught now
    except Exception as exc:  # noqa: BLE001
        if pm.is_registered(plugin):
            pm.unregister(plugin)
        loaded.failures.append(PluginFailure(source, "register", f"{type(exc).__name__}: {exc}"))
        return
    loaded.sources[name] = source


def _source(ep: importlib.metadata.EntryPoint) -> str:
    dist = ep.dist
    package = f"{dist.metadata['Name']} {dist.version}" if dist is not None else "unknown package"
    return f"{package} [{ep.name}]"


def load_registry(
    *, entry_points: bool = True, extra: Iterable[ModuleType | object] = (), strict: bool | None = None
) -> Registry:
    """Every registered component, by calling each plugin's hooks one plugin at a time.

    One plugin's failing hook is recorded as that plugin's failure and leaves the others intact.
    """
    loaded = make_plugin_manager(entry_points=entry_points, extra=extra)
    registry = Registry(failures=loaded.failures)
    for hook_name, kind in HOOK_KINDS.items():
        caller = getattr(loaded.pm.hook, hook_name)
        for impl in reversed(caller.get_hookimpls()):  # registration order
            source = loaded.sources.get(impl.plugin_name, impl.plugin_name)
            try:
                impl.function(register=registry.registrar(kind, source))
            except Exception as exc:  # noqa: BLE001
                registry.failures.append(PluginFailure(source, f"{hook_name}", f"{type(exc).__name__}: {exc}"))
    if strict is None:
        strict = os.environ.get(STRICT_ENV, "") not in ("", "0", "false")
    if strict and registry.failures:
        lines = "; ".join(f"{f.source} ({f.stage}): {f.error}" for f in registry.failures)
        raise PluginLoadError(f"plugins failed to load (strict mode, {STRICT_ENV} is set): {lines}")
    return registry
