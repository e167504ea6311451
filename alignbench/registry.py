"""A typed registry of plugin components with lazy import targets.

Components are registered by name under one of four kinds. The target is imported on first use, so
listing plugins costs no heavy import. Unknown names get the list of known names and the closest
match; a name registered twice is an error naming both sources (never a silent winner).
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import DuplicatePluginError, PluginLoadError, UnknownPluginError

KINDS = ("aligner", "dataset", "encoder", "metric", "perturbation")


@dataclass(frozen=True)
class PluginSpec:
    """One registered component: what it is called, where it lives and who registered it."""

    kind: str
    name: str
    target: str | type
    description: str
    source: str

    def load(self) -> type:
        """Import the target and return the class it names."""
        if not isinstance(self.target, str):
            return self.target
        module_name, _, attribute = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attribute) if attribute else module
        except Exception as exc:  # noqa: BLE001 - any import failure of a plugin is reported the same way
            raise PluginLoadError(
                f"{self.kind} {self.name!r} from {self.source} could not be loaded "
                f"({self.target}): {type(exc).__name__}: {exc}. "
                f"Reinstall or upgrade {self.source}, or leave {self.name!r} out of the sweep."
            ) from exc


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be imported or could not register its components."""

    source: str
    stage: str
    error: str


@dataclass
class Registry:
    """Components by kind and name, plus the plugins that failed to load."""

    _specs: dict[str, dict[str, PluginSpec]] = field(default_factory=lambda: {k: {} for k in KINDS})
    failures: list[PluginFailure] = field(default_factory=list)

    def add(self, kind: str, name: str, target: str | type, *, description: str = "", source: str) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown plugin kind {kind!r}; kinds are {', '.join(KINDS)}")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{source} registered a {kind} with an empty or non-string name: {name!r}")
        if isinstance(target, str) and ":" not in target:
            raise ValueError(f"{source} registered {kind} {name!r} with target {target!r}; use 'module:Class'")
        existing = self._specs[kind].get(name)
        if existing is not None:
            raise DuplicatePluginError(
                f"{kind} {name!r} is registered twice: by {existing.source} and by {source}. "
                f"Uninstall one of them or block one with ALIGNBENCH_BLOCK_PLUGINS."
            )
        self._specs[kind][name] = PluginSpec(kind, name, target, description, source)

    def registrar(self, kind: str, source: str) -> Callable[..., None]:
        """The ``register`` callable handed to one plugin's hook for one kind."""

        def register(name: str, target: str | type, description: str = "") -> None:
            self.add(kind, name, target, description=description, source=source)

        return register

    def names(self, kind: str) -> list[str]:
        return sorted(self._specs[kind])

    def specs(self, kind: str | None = None) -> list[PluginSpec]:
        kinds = KINDS if kind is None else (kind,)
        return [self._specs[k][n] for k in kinds for n in sorted(self._specs[k])]

    def get(self, kind: str, name: str) -> PluginSpec:
        try:
            return self._specs[kind][name]
        except KeyError:
            raise UnknownPluginError(unknown_name_message(kind, name, self.names(kind))) from None

    def load(self, kind: str, name: str) -> type:
        return self.get(kind, name).load()

    def create(self, kind: str, name: str, params: dict[str, Any] | None = None) -> Any:
        """Instantiate a component with validated parameters."""
        from .params import build

        return build(self.load(kind, name), params or {}, label=f"{kind} {name!r}")


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    closest = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {closest[0]!r}?" if closest else ""
    listing = ", ".join(known) if known else "(none loaded; see `alignbench list`)"
    return f"unknown {kind} {name!r}.{hint} Known {kind}s: {listing}."
