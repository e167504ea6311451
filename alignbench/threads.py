"""The BLAS thread pool: how many threads it has, and a scope that holds it to one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

# OpenBLAS has one pool for the process. Scopes entered from several threads at once share one
# limit: the first in sets it, the last out restores what was there before the first.
_lock = threading.Lock()
_depth = 0
_limits = None


@contextmanager
def single_threaded() -> Iterator[None]:
    """BLAS limited to one thread for the scope (every thread of the process: the pool is global).
    Safe to enter from several threads at once. Needs threadpoolctl; without it, a no-op."""
    global _depth, _limits
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        yield
        return
    with _lock:
        if _depth == 0:
            _take_control()
            _limits = threadpool_limits(limits=1, user_api="blas")
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _take_control()
                _limits.restore_original_limits()
                _take_control()  # and leave it to no thread, as it was


def _take_control() -> None:
    """threadpoolctl 3.8+ lets only one thread change OpenBLAS's pool and silently ignores the rest;
    the scope's first and last thread may be any, so control is cleared before each change."""
    import threadpoolctl

    clear = getattr(getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


def blas_threads() -> int:
    """The threads BLAS would use for one large product now (1 without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return 1
    return max((int(info["num_threads"]) for info in threadpool_info() if info["user_api"] == "blas"), default=1)
