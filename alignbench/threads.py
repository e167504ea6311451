"""The BLAS thread pool: how many threads it has, and a scope that holds it to one."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

# BLAS libraries threaded with pthreads (numpy's OpenBLAS) have one pool for the process: scopes
# entered from several threads at once share one limit, the first in sets it, the last out restores
# what was there before the first. Those threaded with OpenMP (faiss's OpenBLAS) take a limit per
# thread: each thread sets and restores its own.
_lock = threading.Lock()
_depth = 0
_shared = None


@contextmanager
def single_threaded() -> Iterator[None]:
    """BLAS limited to one thread for the scope: in every thread of the process for libraries with
    one pool, in this thread for those threaded with OpenMP (a thread that computes must enter the
    scope itself). Safe to enter from several threads at once. Needs threadpoolctl; without it, a no-op."""
    global _depth, _shared
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        yield
        return
    blas = ThreadpoolController().select(user_api="blas")
    per_thread = [c.filepath for c in blas.lib_controllers if getattr(c, "threading_layer", None) == "openmp"]
    process_wide = [c.filepath for c in blas.lib_controllers if c.filepath not in per_thread]
    with ExitStack() as stack:
        if per_thread:
            stack.enter_context(blas.select(filepath=per_thread).limit(limits=1))
        with _lock:
            if _depth == 0 and process_wide:
                _take_control()
                _shared = blas.select(filepath=process_wide).limit(limits=1)
            _depth += 1
        try:
            yield
        finally:
            with _lock:
                _depth -= 1
                if _depth == 0 and _shared is not None:
                    _take_control()
                    _shared.restore_original_limits()
                    _shared = None
                    _take_control()  # and leave it to no thread, as it was


def _take_control() -> None:
    """threadpoolctl 3.8+ lets only one thread change OpenBLAS's process-wide pool and silently
    ignores the rest; the scope's first and last thread may be any, so control is cleared before
    each change."""
    import threadpoolctl

    clear = getattr(getattr(threadpoolctl, "OpenBLASController", None), "clear_controlling_thread", None)
    if clear is not None:
        clear(force=True)


def blas_threads() -> int:
    """The threads BLAS may use for one large product now, in this thread: the fewest of any loaded
    BLAS library's (1 without threadpoolctl). Not the most: a library loaded after a limit was set
    (faiss brings its own OpenBLAS, on import) has its default, and would raise it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return 1
    return min((int(info["num_threads"]) for info in threadpool_info() if info["user_api"] == "blas"), default=1)
