"""Cells and encoding on a Ray cluster: ``alignbench run --executor ray [--ray-address auto]``.

Cells are one-CPU tasks; a dataset's splits are put in the object store once and read there by
every task. A task whose worker dies is retried once by Ray, then recorded as failed. With a
``cell_timeout``, a task gives up on a cell that runs longer (recorded as failed, not retried) and
its worker process exits after it, taking the stuck cell with it; a cell stuck in C code that holds
Python's global lock keeps the task from giving up (the processes executor kills such a worker from
outside). Raw items are
encoded by a pool of encoder actors (one per GPU, else one per CPU), shard by shard, for the cache.
Ray is imported only here, and this module only when Ray is chosen.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from typing import Any, Callable, Iterator

from .data import CorruptedInputs
from .errors import AlignbenchError
from .evaluate import Outcome, environment
from .executors import (LONGEST_WAIT_SECONDS, MAX_ATTEMPTS, CellTask, Executor, died, import_ray, limit_threads,
                        pickled_size, run_task, timed_out)
from .interfaces import DatasetSplits
from .registry import Registry

log = logging.getLogger(__name__)

CONNECT_SECONDS = 5.0  # a Ray head that does not accept a connection in this time is unreachable
EXIT_AFTER_GIVING_UP_SECONDS = 5.0  # a worker that gave up on a cell ends this long after returning


class RayExecutor(Executor):
    """Cells as Ray tasks (one CPU each) on the cluster at ``address`` (None: a local one started here,
    or the one this process already joined). Shared values go into the object store once."""

    name = "ray"

    def __init__(self, address: str | None = None, cell_timeout: float | None = None) -> None:
        super().__init__()
        self.address = address
        self.cell_timeout = cell_timeout
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
        # One cell per worker process under a time limit: the process that gave up on a cell exits,
        # and the cell's thread with it.
        once = {"max_calls": 1} if self.cell_timeout is not None else {}
        self._remote = ray.remote(num_cpus=1, max_retries=MAX_ATTEMPTS - 1, **once)(ray_task)

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
        ref = self._remote.remote(self._registry, task, self._refs[task.splits_key], corrupted, self.cell_timeout)
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


def ray_task(registry: Registry, task: CellTask, splits: DatasetSplits, corrupted: CorruptedInputs | None,
             cell_timeout: float | None = None) -> tuple[Outcome, float]:
    """A Ray task: the object store hands over the shared values; one thread, as the task has one CPU.
    With ``cell_timeout``, the cell runs in a thread of its own that the task stops waiting for."""
    limit_threads(1)
    shared = {task.splits_key: splits}
    if task.corrupted_key:
        shared[task.corrupted_key] = corrupted
    if cell_timeout is None:
        return run_task(registry, task, shared)
    result: list = []

    def evaluate() -> None:
        limit_threads(1)  # OpenMP's limit is per thread
        try:
            result.append(run_task(registry, task, shared))
        except BaseException as exc:  # noqa: BLE001 - raised again in the task's own thread, below
            result.append(exc)

    cell = threading.Thread(target=evaluate, daemon=True, name="alignbench-cell")
    cell.start()
    deadline = time.monotonic() + cell_timeout
    while not result and cell.is_alive() and (left := deadline - time.monotonic()) > 0:
        cell.join(min(left, LONGEST_WAIT_SECONDS))
    if not result:
        # max_calls=1 ends this process after the task, but an exit waits for the cell's non-daemon
        # threads (a thread pool's): end it regardless, once the result has had time to be stored.
        ending = threading.Timer(EXIT_AFTER_GIVING_UP_SECONDS, os._exit, args=(0,))
        ending.daemon = True
        ending.start()
        return timed_out(cell_timeout), float(cell_timeout)
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]
