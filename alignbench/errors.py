"""Project exceptions. Every message names the problem and the fix."""

from __future__ import annotations


class AlignbenchError(Exception):
    """Base class: an error the CLI shows as one line, without a traceback."""


class UnknownPluginError(AlignbenchError, LookupError):
    """A plugin name that no loaded plugin registered."""


class DuplicatePluginError(AlignbenchError):
    """Two plugins registered the same name for the same kind."""


class PluginLoadError(AlignbenchError):
    """A plugin failed to import or register (raised only in strict mode or on use)."""


class InvalidInputError(AlignbenchError, ValueError):
    """Arrays of the wrong shape, dtype or content (NaN, inf)."""


class InvalidParameterError(AlignbenchError, ValueError):
    """A plugin parameter that the plugin does not take, or a value of the wrong type."""


class NotFittedError(AlignbenchError):
    """transform_* called before fit."""


class DatasetNotFoundError(AlignbenchError, FileNotFoundError):
    """Dataset files missing; the message shows the expected layout."""


class StoreError(AlignbenchError):
    """A results store that is not SQLite, is damaged, has another schema, or cannot be created."""


def message_of(exc: BaseException) -> str:
    """An exception's message, even from one whose ``str()`` itself raises."""
    try:
        return str(exc)
    except Exception:  # noqa: BLE001
        return f"(its message could not be read: {type(exc).__name__})"


def from_plugin(label: str, doing: str, call):
    """``call()``, a component's own code (its constructor, ``validate()``, ``get_params()``...): a
    failure is one line naming the component and what it was ``doing`` ("could not be made",
    "failed in validate()"), not a traceback that ends the command. KeyboardInterrupt and alignbench's
    own errors pass through."""
    try:
        return call()
    except (AlignbenchError, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - sys.exit in a plugin included
        raise PluginLoadError(f"{label} {doing}: {type(exc).__name__}: {message_of(exc)}.") from None
