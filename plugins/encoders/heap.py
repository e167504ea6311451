"""glibc's malloc tuned for encoding on the CPU: the heap freed after one batch is kept for the next.

A convolutional network's activations are blocks of megabytes allocated and freed layer by layer. By
default glibc serves such blocks with fresh memory maps, raising its threshold for that as it sees
them freed, and returns freed heap to the system past a trim threshold: so, depending on which
sizes came first, every batch could fault its activations' pages in anew. Measured on 2 cores
(tests/benchmarks/test_bench_encoders.py, each way in a fresh process, best of 3): EfficientNet-Lite0
encoded 95 images a second by default and 151 with blocks up to 32 MiB served from a heap that is
kept while encoding. Elsewhere than glibc (macOS, musl) nothing changes.
"""

from __future__ import annotations

import ctypes
import functools
import threading
from contextlib import contextmanager
from typing import Iterator

# mallopt's parameter numbers (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks up to this size come from the heap: glibc's ceiling for the threshold on 64-bit systems
# (DEFAULT_MMAP_THRESHOLD_MAX); it ignores larger values.
MMAP_THRESHOLD = 32 << 20
# Freed heap kept while encoding, up to this much.
KEPT_WHILE_ENCODING = 1 << 30
# Setting the mmap threshold ends glibc's own adjustment of both thresholds for the process, so
# afterwards the trim threshold is set where that adjustment puts it for this mmap threshold (twice
# it): trimming at glibc's initial 128 KiB would fault every later large block in anew.
TRIM_THRESHOLD_AFTER = 2 * MMAP_THRESHOLD

_lock = threading.Lock()
_depth = 0


@functools.lru_cache(maxsize=1)
def glibc():
    """The C library this process runs on when it is glibc (it has ``mallopt`` and ``malloc_trim``),
    else None."""
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return libc


@contextmanager
def heap_kept(libc=None) -> Iterator[bool]:
    """Within the block, blocks up to 32 MiB come from the heap and freed heap is kept (up to 1 GiB);
    when the outermost of nested or concurrent blocks ends, the excess is given back to the system
    and the trim threshold goes to twice the mmap threshold. Yields whether glibc is there to take
    the settings. The 32 MiB mmap threshold stays for the process: glibc's own adjustment moves it
    towards that value anyway, and no setting brings the adjustment back."""
    global _depth
    libc = libc if libc is not None else glibc()
    if libc is None:
        yield False
        return
    with _lock:
        if _depth == 0:
            libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
            libc.mallopt(M_TRIM_THRESHOLD, KEPT_WHILE_ENCODING)
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_AFTER)
                libc.malloc_trim(0)
