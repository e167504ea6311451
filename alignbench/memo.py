"""In-memory reuse of work that depends only on array contents, within one process.

Cells of a sweep repeat aligner-independent work on the same arrays: fmap and fmap-spectral build
the same kNN graphs and eigenbases from the same train rows, and the spectral metric builds the
ground-truth map of the same held-out split for every cell. :func:`memoize_by_content` keys a pure
function's results by a digest of its array arguments' bytes (with shape and dtype) and its other
arguments, so a second call with equal inputs returns the first result, whichever object holds them.
Results are made read-only so that no caller can change what the next one gets.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from typing import Any, Callable, Hashable

import numpy as np


def content_key(*args: Any, **kwargs: Any) -> Hashable:
    """A hashable key for arguments: arrays by a digest of their bytes, shape and dtype; scalars,
    strings and None as they are."""
    def part(value: Any) -> Hashable:
        if isinstance(value, np.ndarray):
            digest = hashlib.blake2b(np.ascontiguousarray(value).data, digest_size=16).hexdigest()
            return ("array", value.shape, value.dtype.str, digest)
        if isinstance(value, (tuple, list)):
            return tuple(part(v) for v in value)
        hash(value)  # anything else must be hashable as it is
        return value
    return tuple(part(a) for a in args), tuple(sorted((k, part(v)) for k, v in kwargs.items()))


def _read_only(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif isinstance(value, tuple):
        for v in value:
            _read_only(v)
    return value


def memoize_by_content(maxsize: int = 8) -> Callable[[Callable], Callable]:
    """Decorator: remember the last ``maxsize`` results of a pure function of arrays.

    ``function.memo_info()`` gives ``{"hits", "misses", "size"}``; ``function.memo_clear()`` empties it.
    """
    def decorate(function: Callable) -> Callable:
        results: OrderedDict[Hashable, Any] = OrderedDict()
        counts = {"hits": 0, "misses": 0}

        @functools.wraps(function)
        def memoized(*args, **kwargs):
            key = content_key(*args, **kwargs)
            if key in results:
                counts["hits"] += 1
                results.move_to_end(key)
                return results[key]
            counts["misses"] += 1
            value = _read_only(function(*args, **kwargs))
            results[key] = value
            if len(results) > maxsize:
                results.popitem(last=False)
            return value

        memoized.memo_info = lambda: {**counts, "size": len(results)}
        memoized.memo_clear = lambda: (results.clear(), counts.update(hits=0, misses=0))
        return memoized
    return decorate
