"""Typed plugin parameters: the constructor signature is the schema.

Like scikit-learn, a component's ``__init__`` only stores its parameters. Here we read the
signature to reject unknown keys, check value types against the annotations, and report the
effective parameters (defaults filled in) so that results record every setting that moves a number.
"""

from __future__ import annotations

import difflib
import inspect
import json
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from .errors import InvalidParameterError, from_plugin


def parameter_defaults(cls: type) -> dict[str, Any]:
    """Constructor parameters and their defaults (``inspect.Parameter.empty`` when required)."""
    signature = inspect.signature(cls.__init__)
    return {
        name: p.default
        for name, p in signature.parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }


def get_params(obj: Any) -> dict[str, Any]:
    """The effective parameters of a constructed component, read back from its attributes."""
    return {name: getattr(obj, name) for name in parameter_defaults(type(obj))}


def build(cls: type, params: dict[str, Any], *, label: str) -> Any:
    """``cls(**params)`` after checking names and types; errors name the parameter and the fix."""
    defaults = parameter_defaults(cls)
    for key in params:
        if key not in defaults:
            closest = difflib.get_close_matches(key, list(defaults), n=1)
            hint = f" Did you mean {closest[0]!r}?" if closest else ""
            known = ", ".join(defaults) or "none"
            raise InvalidParameterError(f"{label} has no parameter {key!r}.{hint} Its parameters: {known}.")
    missing = [k for k, v in defaults.items() if v is inspect.Parameter.empty and k not in params]
    if missing:
        raise InvalidParameterError(f"{label} needs parameter(s) {', '.join(missing)}.")
    hints = type_hints(cls, label)
    checked = {key: check_type(value, hints.get(key), f"{label} parameter {key!r}") for key, value in params.items()}
    return from_plugin(label, "could not be made", lambda: cls(**checked))


def type_hints(cls: type, label: str) -> dict[str, Any]:
    """The constructor's annotations, resolved; one that names nothing (a typo, a type imported only
    while type checking) is a one-line PluginLoadError naming the component."""
    return from_plugin(label, "has parameter annotations that cannot be resolved (fix them in its __init__)",
                       lambda: typing.get_type_hints(cls.__init__))


def check_type(value: Any, annotation: Any, where: str) -> Any:
    """Return ``value`` (ints widened to float where a float is expected) or raise."""
    if annotation is None or annotation is Any:
        return value
    origin = get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for option in get_args(annotation):
            try:
                return check_type(value, option, where)
            except InvalidParameterError:
                continue
        raise InvalidParameterError(f"{where} must be {describe(annotation)}, got {value!r}.")
    if origin is Literal:
        if value in get_args(annotation):
            return value
        raise InvalidParameterError(f"{where} must be one of {list(get_args(annotation))}, got {value!r}.")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise InvalidParameterError(f"{where} must be a list, got {value!r}.")
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        item_type = args[0] if args else None
        return origin(check_type(v, item_type, where) for v in value)
    if annotation is type(None):
        if value is None:
            return None
        raise InvalidParameterError(f"{where} must be null, got {value!r}.")
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, float) and isinstance(value, bool):
        raise InvalidParameterError(f"{where} must be {annotation.__name__}, got {value!r}.")
    if isinstance(annotation, type) and not isinstance(value, annotation):
        raise InvalidParameterError(f"{where} must be {annotation.__name__}, got {value!r}.")
    return value


def describe(annotation: Any) -> str:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in get_args(annotation))
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def parse_assignment(text: str) -> tuple[str, str, Any]:
    """Parse ``"component.key=value"``; the value is JSON, or a plain string when it is not JSON.

    JSON keeps types honest: ``dim=64`` is an int, ``normalize=false`` a bool, ``ks=[1,5]`` a list.
    """
    target, sep, raw = text.partition("=")
    component, dot, key = target.partition(".")
    if not sep or not dot or not component or not key:
        raise InvalidParameterError(f"cannot read {text!r}: write NAME.KEY=VALUE, e.g. procrustes.dim=64")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return component, key, value


def check_range(where: str, value: float, *, low: float | None = None, high: float | None = None,
                open_low: bool = False, open_high: bool = False) -> None:
    """Raise InvalidParameterError unless ``value`` is finite and within the bounds (for a component's
    ``validate``: impossible values are rejected when the sweep is planned, not cell by cell)."""
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidParameterError(f"{where} must be a finite number, got {value!r}.")
    too_low = low is not None and (value <= low if open_low else value < low)
    too_high = high is not None and (value >= high if open_high else value > high)
    if too_low or too_high:
        left = "" if low is None else f"{'>' if open_low else '>='} {low}"
        right = "" if high is None else f"{'<' if open_high else '<='} {high}"
        raise InvalidParameterError(f"{where} must be {' and '.join(b for b in (left, right) if b)}, got {value!r}.")


@dataclass(frozen=True)
class Range:
    """The values a numeric parameter can take: between ``low`` and ``high`` (None: unbounded; open
    ends exclude the bound), always finite. ``Range()`` is any finite number. For a list parameter
    (``tuple[int, ...]``) every element is checked; None, where the annotation allows it, is not."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def check(self, where: str, value: Any) -> None:
        for element in value if isinstance(value, (tuple, list)) else (value,):
            if element is not None:
                check_range(where, element, low=self.low, high=self.high, open_low=self.open_low,
                            open_high=self.open_high)


def number_types(annotation: Any) -> list[type]:
    """The number types (int, float) an annotation allows, directly or inside an optional or a list."""
    if annotation in (int, float):
        return [annotation]
    if get_origin(annotation) not in (typing.Union, types.UnionType, tuple, list):
        return []
    return [t for a in get_args(annotation) if a is not Ellipsis for t in number_types(a)]


def numeric_parameters(cls: type) -> list[str]:
    """The constructor parameters annotated as numbers (int, float, optional, or lists of them): the
    ones a component's ``parameter_ranges`` has to bound."""
    hints = type_hints(cls, getattr(cls, "name", None) or cls.__name__)
    return [name for name in parameter_defaults(cls) if number_types(hints.get(name))]


def check_parameter_ranges(component: Any) -> None:
    """InvalidParameterError, naming ``component.key`` and the allowed values, for the first parameter
    outside its declared ``parameter_ranges``."""
    for key, allowed in getattr(type(component), "parameter_ranges", {}).items():
        allowed.check(f"{component.name}.{key}", getattr(component, key))


def check_fits_in_memory(where: str, n_bytes: float) -> None:
    """Refuse, before any work, data that cannot be held in this machine's memory."""
    import os

    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: nothing to compare with
        return
    if n_bytes > total:
        raise InvalidParameterError(f"{where} would need about {n_bytes / 2**30:,.0f} GiB of memory; this machine "
                                    f"has {total / 2**30:,.0f} GiB. Lower it.")
