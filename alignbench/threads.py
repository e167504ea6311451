"""The BLAS thread pool: how many threads it has, and a scope that holds it to one."""

from __future__ import annotations

from contextlib import nullcontext
from typing import ContextManager


def single_threaded() -> ContextManager:
    """BLAS limited to one thread for the scope (every thread of the process: the pool is global).
    Needs threadpoolctl; without it, a no-op."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def blas_threads() -> int:
    """The threads BLAS would use for one large product now (1 without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return 1
    return max((int(info["num_threads"]) for info in threadpool_info() if info["user_api"] == "blas"), default=1)
