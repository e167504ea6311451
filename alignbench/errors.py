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
