"""A typed registry of plugin components with lazy import targets.

Components are registered by name under one of five kinds. The target is imported on first use, so
listing plugins costs no heavy import. Unknown names get the list of known names and the closest
match; a name registered twice is an error naming both sources (never a silent winner).

Every registration is checked: the name must be a safe file-name component (``NAME_PATTERN``: it
becomes leaderboard file names), and the class must subclass its kind's interface, implement every
abstract method and carry the registered ``name``. A class is checked when it is registered, a lazy
``"module:Class"`` target when it is first loaded.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import AlignbenchError, DuplicatePluginError, PluginLoadError, UnknownPluginError

KINDS = ("aligner", "dataset", "encoder", "metric", "perturbation")
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")


class InvalidRegistrationError(PluginLoadError, ValueError):
    """A plugin registered a bad name, a bad target or a class that is not a valid component."""


def interface(kind: str) -> type:
    """The base class every component of ``kind`` subclasses (alignbench.interfaces)."""
    from . import interfaces

    return {"aligner": interfaces.Aligner, "dataset": interfaces.Dataset, "encoder": interfaces.Encoder,
            "metric": interfaces.Metric, "perturbation": interfaces.Perturbation}[kind]


def check_component(kind: str, name: str, target: object, source: str) -> None:
    """Raise InvalidRegistrationError unless ``target`` is a usable ``kind`` class called ``name``."""
    base = interface(kind)
    where = f"{kind} {name!r} from {source}"
    if not (inspect.isclass(target) and issubclass(target, base)):
        what = f"class {target.__qualname__}" if inspect.isclass(target) else f"{type(target).__name__} {target!r}"
        raise InvalidRegistrationError(
            f"{where} is {what}, not a subclass of alignbench.{base.__name__}; register a subclass of it.")
    missing = sorted(getattr(target, "__abstractmethods__", ()))
    if missing:
        raise InvalidRegistrationError(
            f"{where}: {target.__qualname__} does not implement {', '.join(missing)} "
            f"(abstract in alignbench.{base.__name__}); define them before registering it.")
    if getattr(target, "name", None) != name:
        raise InvalidRegistrationError(
            f"{where}: {target.__qualname__}.name is {getattr(target, 'name', None)!r}; "
            f"set name = {name!r} on the class or register it under its own name.")


@dataclass(frozen=True)
class PluginSpec:
    """One registered component: what it is called, where it lives and who registered it."""

    kind: str
    name: str
    target: str | type
    description: str
    source: str

    def load(self) -> type:
        """Import the target and return the class it names, checked as a component of its kind."""
        if not isinstance(self.target, str):
            return self.target  # checked when it was registered
        module_name, _, attribute = self.target.partition(":")
        try:
            target = getattr(importlib.import_module(module_name), attribute)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - a plugin's ImportError and its sys.exit() alike
            raise PluginLoadError(
                f"{self.kind} {self.name!r} from {self.source} could not be loaded "
                f"({self.target}): {type(exc).__name__}: {exc}. "
                f"Reinstall or upgrade {self.source}, or leave {self.name!r} out of the sweep."
            ) from exc
        check_component(self.kind, self.name, target, self.source)
        return target


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
        """Register one component; a bad name or class raises InvalidRegistrationError, a name
        already taken DuplicatePluginError (the first registration stays)."""
        if kind not in KINDS:
            raise ValueError(f"unknown plugin kind {kind!r}; kinds are {', '.join(KINDS)}")
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise InvalidRegistrationError(
                f"{source} registered {kind} {name!r}: a name is lower-case letters, digits, '.', '_' and "
                f"'-', starting with a letter or digit (names become file names); rename it in {source}.")
        if isinstance(target, str):
            module_name, _, attribute = target.partition(":")
            if not module_name or not attribute:
                raise InvalidRegistrationError(
                    f"{source} registered {kind} {name!r} with target {target!r}; use 'module:Class'")
        else:
            check_component(kind, name, target, source)
        existing = self._specs[kind].get(name)
        if existing is not None:
            raise DuplicatePluginError(
                f"{kind} {name!r} is registered twice: by {existing.source} and by {source}; "
                f"the one from {existing.source} is kept. "
                f"Uninstall one of them or block one with ALIGNBENCH_BLOCK_PLUGINS."
            )
        self._specs[kind][name] = PluginSpec(kind, name, target, description, source)

    def registrar(self, kind: str, source: str) -> Callable[..., None]:
        """The ``register`` callable handed to one plugin's hook for one kind.

        A registration that is rejected (bad name or class, a name already taken) is recorded as a
        failure of ``source`` and skipped; the plugin's other registrations go on."""

        def register(name: str, target: str | type, description: str = "") -> None:
            try:
                self.add(kind, name, target, description=description, source=source)
            except AlignbenchError as exc:
                self.failures.append(PluginFailure(source, f"register {kind} {name!r}", str(exc)))

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
