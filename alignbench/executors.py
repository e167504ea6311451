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
import signal
import sys
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from .data import CorruptedInputs
from .errors import AlignbenchError, InvalidParameterError
from .evaluate import AnchorRows, Outcome, environment, evaluate_cell
from .interfaces import DatasetSplits
from .plan import Cell
from .registry import Registry

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 2  # a cell whose worker died this many times is recorded as failed
CONNECT_SECONDS = 5.0  # a Ray head that does not accept a connection in this time is unreachable
STARTUP_SECONDS = 120.0  # a worker process imports numpy, the plugins and the registry in this time
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


@dataclass
class _Worker:
    process: Any
    conn: Any
    holds: set[str] = field(default_factory=set)
    task: tuple[int, CellTask] | None = None
    batch: tuple[str, int, int] | None = None


class ProcessExecutor(Executor):
    """``workers`` local processes (spawned), each with ``threads`` BLAS and torch threads (default:
    this machine's cores divided among the workers). Cells of one (dataset, seed, level) go to one
    worker, one after another, where possible."""

    name = "processes"

    def __init__(self, workers: int, threads: int | None = None) -> None:
        super().__init__()
        if workers < 1:
            raise InvalidParameterError(f"--workers must be at least 1, got {workers}; pass e.g. --workers 2, "
                                        f"or leave it out to run every cell in this process.")
        self.workers = workers
        self.threads = threads or max(1, available_cores() // workers)
        self.stats.workers = workers
        self._pool: list[_Worker] = []
        self._batches: OrderedDict[tuple[str, int, int], deque[tuple[int, CellTask]]] = OrderedDict()
        self._attempts: dict[int, int] = {}
        self._next_id = 0
        self._registry_bytes = b""

    def start(self, registry: Registry) -> None:
        super().start(registry)
        try:
            self._registry_bytes = pickle.dumps(registry)
        except (pickle.PicklingError, AttributeError, TypeError) as exc:
            raise AlignbenchError(f"a plugin cannot be sent to worker processes ({exc}); register classes that "
                                  f"are importable by module name, or run without --workers.") from None
        started = time.perf_counter()
        self._pool = [self._spawn() for _ in range(self.workers)]
        for worker in self._pool:
            self._await_ready(worker)
        self.stats.startup_s += time.perf_counter() - started

    def _await_ready(self, worker: _Worker) -> None:
        """A worker that cannot start (its plugins fail to import there) stops the run, before any cell."""
        try:
            if worker.conn.poll(STARTUP_SECONDS):
                worker.conn.recv_bytes()
                return
        except (EOFError, OSError):
            pass
        worker.process.join(timeout=1)
        raise AlignbenchError(f"a worker process could not start (exit code {worker.process.exitcode}; its error "
                              f"is above); check that the plugins import in a fresh Python process, or run "
                              f"without --workers.")

    def _spawn(self) -> _Worker:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        driver_end, worker_end = context.Pipe()
        process = context.Process(target=worker_main, args=(worker_end, self.threads), daemon=True,
                                  name="alignbench-worker")
        with thread_environment(self.threads):  # read by BLAS and torch when the worker imports them
            process.start()
        worker_end.close()
        worker = _Worker(process, driver_end)
        self._send(worker, ("registry", self._registry_bytes), counted=False)
        return worker

    @property
    def capacity(self) -> int:
        return self.workers

    def close(self) -> None:
        for worker in self._pool:
            with contextlib.suppress(OSError):
                worker.conn.close()  # the worker reads end-of-file and exits
            if worker.task is not None:  # interrupted mid-cell: nobody will read its result
                worker.process.terminate()
        for worker in self._pool:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.terminate()
                worker.process.join()
        self._pool = []
        super().close()

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._batches.values()) + sum(w.task is not None for w in self._pool)

    def _submit(self, task: CellTask) -> None:
        self._batches.setdefault(task.batch, deque()).append((self._next_id, task))
        self._next_id += 1
        self._dispatch()

    def _drop(self, key: str) -> None:
        super()._drop(key)
        for worker in self._pool:
            if key in worker.holds:
                worker.holds.discard(key)
                self._send(worker, ("forget", key), counted=False)

    def _send(self, worker: _Worker, message: tuple, *, counted: bool = True, shared: bool = False) -> None:
        data = pickle.dumps(message, protocol=5)
        if counted:
            if shared:
                self.stats.bytes_shared += len(data)
            else:
                self.stats.bytes_tasks += len(data)
        try:
            worker.conn.send_bytes(data)
        except OSError:  # the worker died; finished() notices through its sentinel
            pass

    def _dispatch(self) -> None:
        for worker in self._pool:
            if worker.task is not None or not self._batches:
                continue
            queue = self._batches.get(worker.batch)
            if not queue:  # the worker's batch is done: the first one no other worker is on, else the first
                busy = {w.batch for w in self._pool if w.task is not None}
                worker.batch = next((b for b in self._batches if b not in busy), next(iter(self._batches)))
                queue = self._batches[worker.batch]
            task_id, task = queue.popleft()
            if not queue:
                del self._batches[worker.batch]
            for key in task.shared_keys:
                if key not in worker.holds:
                    self._send(worker, ("share", key, self._shared[key]), shared=True)
                    worker.holds.add(key)
            worker.task = (task_id, task)
            self._send(worker, ("cell", task_id, task))

    def finished(self, block: bool) -> Iterator[tuple[CellTask, Outcome]]:
        from multiprocessing.connection import wait

        while True:
            busy = [w for w in self._pool if w.task is not None]
            if not busy:
                return
            waiting = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            ready = set(wait(waiting, timeout=None if block else 0))
            if not ready:
                return
            for worker in busy:
                if worker.conn in ready or (worker.process.sentinel in ready and worker.conn.poll()):
                    try:
                        _, task_id, outcome, busy_s = pickle.loads(worker.conn.recv_bytes())
                    except (EOFError, OSError):
                        yield from self._replace(worker)
                        continue
                    _, task = worker.task
                    worker.task = None
                    self._attempts.pop(task_id, None)
                    self._done(task, busy_s)
                    yield task, outcome
                elif worker.process.sentinel in ready:
                    yield from self._replace(worker)
            self._dispatch()
            block = False  # one wait at most; then whatever else is ready

    def _replace(self, worker: _Worker) -> Iterator[tuple[CellTask, Outcome]]:
        """A worker died: its cell goes back to the front of its batch (or fails after MAX_ATTEMPTS
        deaths), and a fresh worker takes its place."""
        worker.process.join()
        code = worker.process.exitcode
        self.stats.deaths += 1
        task_id, task = worker.task
        worker.task = None
        self._pool.remove(worker)
        with contextlib.suppress(OSError):
            worker.conn.close()
        self._attempts[task_id] = self._attempts.get(task_id, 0) + 1
        log.warning("a worker process died (exit code %s) while evaluating cell %s", code, task.cell.key)
        replacement = self._spawn()
        self._pool.append(replacement)
        self._await_ready(replacement)
        if self._attempts[task_id] >= MAX_ATTEMPTS:
            self._done(task, 0.0)
            yield task, died(task, f"the worker process died (last exit code {code})")
        else:
            self._batches[task.batch] = deque([(task_id, task), *self._batches.get(task.batch, ())])
            self._batches.move_to_end(task.batch, last=False)


def worker_main(conn: Any, threads: int) -> None:
    """A worker process: keeps the shared values it is sent, evaluates cells, sends back outcomes.
    Exits when the driver closes its end (or dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle: it stops the workers
    limit_threads(threads)
    registry = None
    shared: dict[str, Any] = {}
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        kind = message[0]
        if kind == "registry":
            registry = pickle.loads(message[1])
            conn.send_bytes(b"ready")
        elif kind == "share":
            shared[message[1]] = message[2]
        elif kind == "forget":
            shared.pop(message[1], None)
        elif kind == "cell":
            if "torch" in sys.modules:  # imported by the last cell's plugin
                sys.modules["torch"].set_num_threads(threads)
            outcome, busy = run_task(registry, message[2], shared)
            try:
                conn.send_bytes(pickle.dumps(("done", message[1], outcome, busy), protocol=5))
            except OSError:
                return


@contextlib.contextmanager
def thread_environment(threads: int) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


RAY_MISSING = 'Ray is not installed; install it with: pip install -e ".[ray]"'


class RayExecutor(Executor):
    """Cells as Ray tasks (one CPU each) on the cluster at ``address`` (None: a local one started here,
    or the one this process already joined). Shared values go into the object store once."""

    name = "ray"

    def __init__(self, address: str | None = None) -> None:
        super().__init__()
        self.address = address
        self._refs: dict[str, Any] = {}
        self._futures: dict[Any, CellTask] = {}
        self._owned = False

    def start(self, registry: Registry) -> None:
        super().start(registry)
        ray = import_ray()
        if not ray.is_initialized():
            started = time.perf_counter()
            try:
                check_reachable(self.address)
                # A local cluster's workers import what this process imports (plugins on its path).
                local = {} if self.address else {"runtime_env": {"env_vars": {"PYTHONPATH": os.pathsep.join(
                    p for p in sys.path if p and os.path.isdir(p))}}}
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                         logging_level=logging.WARNING, configure_logging=False, **local)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"at {self.address}" if self.address else "here"
                raise AlignbenchError(
                    f"cannot reach a Ray cluster {where} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                    f"start one with `ray start --head` and pass --ray-address auto, or leave out --ray-address "
                    f"to start a local one.") from None
            self._owned = True
            self.stats.startup_s += time.perf_counter() - started
        self.stats.workers = int(ray.cluster_resources().get("CPU", 1))
        self._registry = ray.put(registry)
        self._remote = ray.remote(ray_task).options(num_cpus=1, max_retries=MAX_ATTEMPTS - 1)

    def close(self) -> None:
        ray = sys.modules.get("ray")
        if ray is not None and self._futures:
            for ref in self._futures:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
        self._futures.clear()
        self._refs.clear()
        if self._owned and ray is not None:
            ray.shutdown()
            self._owned = False
        super().close()

    def shard_encoder(self, name: str, params: dict[str, Any], items: Any) -> Callable[[list], Iterator] | None:
        """``encode_shards(ranges)`` for :meth:`EmbeddingCache.get_or_encode_in_shards`: a pool of encoder
        actors, one per GPU (``num_gpus=1``), or one per CPU on a cluster without GPUs. The items are put
        in the object store once; the actors go when the shards are done."""
        if not self._depth:  # not running (splits wanted outside a sweep): the data stage encodes here
            return None
        import ray
        from ray.util import ActorPool

        def encode_shards(ranges: list[tuple[int, int]]) -> Iterator[tuple[int, int, Any]]:
            gpus = int(ray.cluster_resources().get("GPU", 0))
            size = max(1, min(len(ranges), gpus or self.stats.workers))
            actor = ray.remote(EncoderActor).options(num_gpus=1 if gpus else 0, num_cpus=0 if gpus else 1,
                                                     max_restarts=MAX_ATTEMPTS - 1, max_task_retries=MAX_ATTEMPTS - 1)
            actors = [actor.remote(self._registry, name, params) for _ in range(size)]
            items_ref = ray.put(items)
            self.stats.bytes_shared += pickled_size(items)
            try:
                yield from ActorPool(actors).map_unordered(
                    lambda a, shard: a.encode.remote(items_ref, shard[0], shard[1]), ranges)
            finally:
                for a in actors:
                    ray.kill(a)

        return encode_shards

    def _put(self, key: str, value: Any) -> None:
        import ray

        self._refs[key] = ray.put(value)
        self.stats.bytes_shared += pickled_size(value)

    def _drop(self, key: str) -> None:
        super()._drop(key)
        self._refs.pop(key, None)

    @property
    def pending(self) -> int:
        return len(self._futures)

    @property
    def capacity(self) -> int:
        return self.stats.workers

    def _submit(self, task: CellTask) -> None:
        corrupted = self._refs[task.corrupted_key] if task.corrupted_key else None
        ref = self._remote.remote(self._registry, task, self._refs[task.splits_key], corrupted)
        self.stats.bytes_tasks += pickled_size(task)
        self._futures[ref] = task

    def finished(self, block: bool) -> Iterator[tuple[CellTask, Outcome]]:
        import ray

        if not self._futures:
            return
        ready, _ = ray.wait(list(self._futures), num_returns=1, timeout=None if block else 0)
        if ready:
            more, _ = ray.wait(list(self._futures), num_returns=len(self._futures), timeout=0)
            ready = list(dict.fromkeys([*ready, *more]))
        for ref in ready:
            task = self._futures.pop(ref)
            try:
                outcome, busy = ray.get(ref)
            except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError) as exc:  # on every attempt
                log.debug("cell %s: %s", task.cell.key, exc)
                self.stats.deaths += 1
                outcome, busy = died(task, f"the Ray worker died ({type(exc).__name__})"), 0.0
            except ray.exceptions.RayError as exc:  # e.g. a plugin that does not import on the node
                log.debug("cell %s: %s", task.cell.key, exc)
                last = [line.strip() for line in str(exc).splitlines() if line.strip()][-1:] or [type(exc).__name__]
                outcome = Outcome("failed", f"Ray could not run this cell: {last[0]}; install the plugins on "
                                            f"every node.", environment=environment())
                busy = 0.0
            self._done(task, busy)
            yield task, outcome


class EncoderActor:
    """A Ray actor holding one encoder (on one GPU where the cluster has them): encodes shards of items
    it reads from the object store."""

    def __init__(self, registry: Registry, name: str, params: dict[str, Any]):
        self.encoder = registry.create("encoder", name, params)

    def encode(self, items: Any, start: int, stop: int) -> tuple[int, int, Any]:
        import numpy as np

        return start, stop, np.asarray(self.encoder.encode(items[start:stop]), dtype=np.float32)


def check_reachable(address: str | None) -> None:
    """A ``host:port`` (or ``ray://host:port``) address that accepts no connection raises
    ConnectionError at once (``ray.init`` would retry for minutes); ``auto`` and None are Ray's to find."""
    if not address or address == "auto":
        return
    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT or auto, got {address!r}")
    import socket

    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as exc:
        raise ConnectionError(f"nothing answers at {host}:{port}: {exc.strerror or exc}") from None


def ray_task(registry: Registry, task: CellTask, splits: DatasetSplits,
             corrupted: CorruptedInputs | None) -> tuple[Outcome, float]:
    """A Ray task: the object store hands over the shared values; one thread, as the task has one CPU."""
    limit_threads(1)
    shared = {task.splits_key: splits}
    if task.corrupted_key:
        shared[task.corrupted_key] = corrupted
    return run_task(registry, task, shared)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise AlignbenchError(f"--executor ray: {RAY_MISSING}") from None
    return ray


def make_executor(kind: str | None, workers: int | None, ray_address: str | None) -> Executor:
    """The executor the command-line options name: ``kind`` serial, processes or ray (None: processes
    when ``workers`` is given, else serial)."""
    if kind is None:
        kind = "processes" if workers is not None else "ray" if ray_address else "serial"
    if kind not in EXECUTORS:
        raise InvalidParameterError(f"unknown executor {kind!r}; choose one of {', '.join(EXECUTORS)}.")
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
        return RayExecutor(ray_address)
    return ProcessExecutor(workers if workers is not None else available_cores())
