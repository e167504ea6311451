"""Where cells are evaluated: in this process, in local worker processes, or on a Ray cluster.

The driver (the Runner) plans, loads and encodes, claims each cell in the store and records each
Outcome as it arrives; an executor only evaluates. Each dataset's embedded splits are shared once
(``share``): sent once to each worker process that needs them, or put once in Ray's object store,
never with every cell. A task is a cell spec and its anchor rows, a few kilobytes.

A worker that dies while evaluating a cell (killed, out of memory, a plugin that calls ``os._exit``)
costs that cell one attempt: it is evaluated again, by a fresh process, and after ``MAX_ATTEMPTS``
deaths it is recorded as failed with the reason. No cell is lost and none is recorded twice.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterator

from .data import CorruptedInputs
from .errors import AlignbenchError, InvalidParameterError
from .evaluate import AnchorRows, Outcome, environment, evaluate_cell
from .interfaces import DatasetSplits
from .plan import Cell
from .registry import Registry

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2  # a cell whose worker died this many times is recorded as failed
# The longest single wait for a cell under a time limit: the waits' own limits (about 24 days for a
# pipe, less for a thread's join on some platforms) are far below a finite float; a wait that ends
# early just waits again.
LONGEST_WAIT_SECONDS = 3600.0
EXECUTORS = ("serial", "processes", "ray")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class CellTask:
    """One cell to evaluate: its spec, its anchor rows (None: the train split is smaller than the
    level), and the keys of the shared values it reads (splits; corrupted inputs of a perturbation)."""

    cell: Cell
    rows: AnchorRows | None
    splits_key: str
    corrupted_key: str | None = None

    @property
    def shared_keys(self) -> tuple[str, ...]:
        return (self.splits_key,) if self.corrupted_key is None else (self.splits_key, self.corrupted_key)

    @property
    def batch(self) -> tuple[str, int, int]:
        """Cells of one batch are best run one after another in one process (the memo: fmap-spectral
        reuses fmap's eigenbases of the same level and seed)."""
        return self.cell.data_key, self.cell.seed, self.cell.anchors


@dataclass
class ExecutorStats:
    """What an executor did: cells evaluated, seconds spent inside them (summed over workers), bytes
    of shared values and of tasks sent (pickled sizes, arrays counted by their buffers)."""

    cells: int = 0
    busy_s: float = 0.0
    bytes_shared: int = 0
    bytes_tasks: int = 0
    workers: int = 1
    deaths: int = 0
    startup_s: float = 0.0  # starting the workers (or the local Ray cluster) and waiting for them


def pickled_size(value: Any) -> int:
    """Bytes that pickling ``value`` gives, with array buffers counted without copying them."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    return len(head) + sum(buffer.raw().nbytes for buffer in buffers)


def limit_threads(threads: int) -> None:
    """In a worker process: BLAS/OpenMP pools (threadpoolctl) and torch's to ``threads``."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def run_task(registry: Registry, task: CellTask, shared: dict[str, Any]) -> tuple[Outcome, float]:
    """Evaluate a task from the shared values it names: its outcome and the seconds it took."""
    started = time.perf_counter()
    splits: DatasetSplits = shared[task.splits_key]
    corrupted: CorruptedInputs | None = shared[task.corrupted_key] if task.corrupted_key else None
    outcome = evaluate_cell(registry, task.cell, splits, task.rows, corrupted)
    return outcome, time.perf_counter() - started


def timed_out(cell_timeout: float) -> Outcome:
    """The outcome of a cell stopped at ``--cell-timeout``."""
    return Outcome("failed", f"ran past --cell-timeout {cell_timeout:g} s and was stopped; raise --cell-timeout if "
                             f"the cell needs longer, or look for a plugin that hangs.", environment=environment())


def died(task: CellTask, what: str) -> Outcome:
    return Outcome("failed", f"{what} while evaluating this cell, {MAX_ATTEMPTS} times; it is recorded as "
                             f"failed (a re-run retries it). Look for memory exhaustion or a plugin that exits.",
                   environment=environment())


class Executor:
    """Evaluates tasks. ``share`` a value before submitting tasks that name it; ``retire`` it when no
    more tasks will (it is dropped once the last one finishes); ``finished`` yields results as they come."""

    name = "serial"

    def __init__(self) -> None:
        self.stats = ExecutorStats()
        self._shared: dict[str, Any] = {}
        self._uses: dict[str, int] = {}
        self._retired: set[str] = set()
        self._depth = 0

    @contextlib.contextmanager
    def running(self, registry: Registry) -> Iterator["Executor"]:
        """Started for the block (workers, a Ray connection); nested blocks share the outer one's."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._depth = 1
        try:
            self.start(registry)
            yield self
        finally:
            self._depth = 0
            self.close()

    def start(self, registry: Registry) -> None:
        self.registry = registry

    def close(self) -> None:
        self._shared.clear()
        self._uses.clear()
        self._retired.clear()

    def share(self, key: str, value: Any) -> None:
        self._retired.discard(key)
        if key not in self._shared:
            self._shared[key] = value
            self._uses.setdefault(key, 0)
            self._put(key, value)

    def retire(self, key: str) -> None:
        self._retired.add(key)
        if self._uses.get(key) == 0:
            self._drop(key)

    def submit(self, task: CellTask) -> None:
        for key in task.shared_keys:
            self._uses[key] += 1
        self._submit(task)

    @property
    def pending(self) -> int:
        """Tasks submitted and not yet returned by ``finished``."""
        raise NotImplementedError

    @property
    def capacity(self) -> int:
        """Cells it evaluates at once; the driver keeps about twice as many submitted."""
        return 1

    def finished(self, block: bool) -> Iterator[tuple[CellTask, Outcome]]:
        """Results ready now; with ``block``, wait for at least one while any task is pending."""
        raise NotImplementedError

    def all_submitted(self) -> None:
        """No more tasks are coming until the next ``submit`` (an executor may stop holding some back)."""

    def _done(self, task: CellTask, busy_s: float) -> None:
        self.stats.cells += 1
        self.stats.busy_s += busy_s
        for key in task.shared_keys:
            self._uses[key] -= 1
            if self._uses[key] == 0 and key in self._retired:
                self._drop(key)

    def _put(self, key: str, value: Any) -> None:
        pass

    def _drop(self, key: str) -> None:
        self._shared.pop(key, None)
        self._uses.pop(key, None)
        self._retired.discard(key)

    def _submit(self, task: CellTask) -> None:
        raise NotImplementedError


class SerialExecutor(Executor):
    """Evaluates each task when it is submitted, in this process (the default)."""

    name = "serial"

    def __init__(self) -> None:
        super().__init__()
        self._results: deque[tuple[CellTask, Outcome]] = deque()

    @property
    def pending(self) -> int:
        return len(self._results)

    def _submit(self, task: CellTask) -> None:
        outcome, busy = run_task(self.registry, task, self._shared)
        self._done(task, busy)
        self._results.append((task, outcome))

    def finished(self, block: bool) -> Iterator[tuple[CellTask, Outcome]]:
        while self._results:
            yield self._results.popleft()



def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


RAY_MISSING = 'Ray is not installed; install it with: pip install -e ".[ray]"'


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise AlignbenchError(f"--executor ray: {RAY_MISSING}") from None
    return ray


# Workers past this many per core only add processes (each with its own copy of the data) that wait.
MAX_WORKERS_PER_CORE = 4


def make_executor(kind: str | None, workers: int | None, ray_address: str | None,
                  cell_timeout: float | None = None) -> Executor:
    """The executor the command-line options name: ``kind`` serial, processes or ray (None: processes
    when ``workers`` or ``cell_timeout`` is given, else serial). A cell that hangs can only be stopped
    by ending its process, so ``cell_timeout`` needs worker processes (one, where ``workers`` is not
    given) or Ray's."""
    if cell_timeout is not None and not 0 < cell_timeout < float("inf"):
        raise InvalidParameterError(f"--cell-timeout must be a number of seconds above 0, got {cell_timeout:g}; "
                                    f"pass e.g. --cell-timeout 600, or leave it out for no limit.")
    named = kind
    if kind is None:
        kind = "processes" if workers is not None or (cell_timeout and not ray_address) else \
            "ray" if ray_address else "serial"
    if kind not in EXECUTORS:
        raise InvalidParameterError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}.")
    if cell_timeout is not None and kind == "serial":
        raise InvalidParameterError("--cell-timeout stops a cell by ending the worker process that runs it, which "
                                    "--executor serial does not have; use --executor processes (the default with "
                                    "--cell-timeout) or ray, or drop --cell-timeout.")
    if ray_address and kind != "ray":
        raise InvalidParameterError(f"--ray-address is for --executor ray, not {kind}; add --executor ray or "
                                    f"drop --ray-address.")
    if kind == "serial":
        if workers not in (None, 1):
            raise InvalidParameterError(f"--executor serial runs one cell at a time; drop --workers {workers} or "
                                        f"use --executor processes.")
        return SerialExecutor()
    if kind == "ray":
        if workers is not None:
            raise InvalidParameterError("--workers sizes local processes; with --executor ray the cluster's CPUs "
                                        "decide. Drop --workers.")
        import_ray()  # a missing Ray is reported before any work
        from .ray_cluster import RayExecutor

        return RayExecutor(ray_address, cell_timeout)
    from .worker_processes import ProcessExecutor

    if workers is not None and workers > (most := MAX_WORKERS_PER_CORE * available_cores()):
        raise InvalidParameterError(f"--workers {workers} is more than {MAX_WORKERS_PER_CORE} per core of this "
                                    f"machine's {available_cores()}: each worker is a process with its own copy of "
                                    f"the data; pass at most {most} (one per core is fastest).")
    if workers is None:
        # Only the time limit asked for a worker process: one, with every core, runs cells as serial would.
        workers = 1 if named is None else available_cores()
    return ProcessExecutor(workers, cell_timeout=cell_timeout)
