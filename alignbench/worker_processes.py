"""Local worker processes: ``alignbench run --workers N``.

N spawned processes, each with cores/N BLAS and torch threads. Each gets the registry once and each
dataset's splits the first time it gets one of its cells; the driver sends one cell at a time to a
free worker, preferring the next cell of the (dataset, seed, level) it worked on last, so that work
shared through the in-memory memo (fmap-spectral reusing fmap's eigenbases) is found there. A
worker that dies mid-cell is replaced and the cell sent again (MAX_ATTEMPTS in all). A cell that
runs past ``cell_timeout`` seconds has its worker killed and replaced, and is recorded as failed
(not retried: it would most likely hang again). Workers exit when the driver closes their pipe or
dies, even in the middle of a cell. On POSIX each worker leads a process group of its own, so the
processes a plugin started in it end with it, whichever way it ends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import signal
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Iterator

from .errors import AlignbenchError, InvalidParameterError
from .evaluate import Outcome
from .executors import (LONGEST_WAIT_SECONDS, MAX_ATTEMPTS, THREAD_VARIABLES, CellTask, Executor, available_cores,
                        died, limit_threads, run_task, timed_out)
from .registry import Registry

log = logging.getLogger(__name__)

STARTUP_SECONDS = 120.0  # a worker process imports numpy, the plugins and the registry in this time
PARENT_CHECK_SECONDS = 1.0  # a worker whose driver died notices within this time, even mid-cell


@dataclass
class _Worker:
    process: Any
    conn: Any
    holds: set[str] = field(default_factory=set)
    task: tuple[int, CellTask] | None = None
    batch: tuple[str, int, int] | None = None
    deadline: float | None = None  # time.monotonic() past which its cell has run too long


class ProcessExecutor(Executor):
    """``workers`` local processes (spawned), each with ``threads`` BLAS and torch threads (default:
    this machine's cores divided among the workers). Cells of one (dataset, seed, level) go to one
    worker, one after another, where possible. ``cell_timeout``: seconds a cell may run (None: no
    limit)."""

    name = "processes"

    def __init__(self, workers: int, threads: int | None = None, cell_timeout: float | None = None) -> None:
        super().__init__()
        if workers < 1:
            raise InvalidParameterError(f"--workers must be at least 1, got {workers}; pass e.g. --workers 2, "
                                        f"or leave it out to run every cell in this process.")
        self.workers = workers
        self.cell_timeout = cell_timeout
        self.threads = threads or max(1, available_cores() // workers)
        self.stats.workers = workers
        self._pool: list[_Worker] = []
        self._batches: OrderedDict[tuple[str, int, int], deque[tuple[int, CellTask]]] = OrderedDict()
        self._attempts: dict[int, int] = {}
        self._next_id = 0
        self._registry_bytes = b""
        self._all_submitted = False

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
            if not wait_for_exit(worker.process, timeout=5):
                worker.process.terminate()
                wait_for_exit(worker.process)
            end_group(worker.process.pid)
            worker.process.join()
        self._pool = []
        super().close()

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._batches.values()) + sum(w.task is not None for w in self._pool)

    def _submit(self, task: CellTask) -> None:
        self._all_submitted = False
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
        """Give each free worker a cell: the next of its own batch; else the first batch no worker has
        had; else the last cell of a busy batch that has two or more waiting (its first ones stay
        together with the cell running); else, once no more cells are coming, any waiting cell. A
        worker may wait meanwhile: the next submitted batch is its own."""
        own = [w for w in self._pool if w.task is None and w.batch in self._batches]
        for worker in own + [w for w in self._pool if w not in own]:  # first those whose batch goes on
            if worker.task is not None or not self._batches:
                continue
            queue, last = self._batches.get(worker.batch), False
            if not queue:
                owned = {w.batch for w in self._pool}
                free = [b for b in self._batches if b not in owned]
                crowded = [b for b in self._batches if len(self._batches[b]) >= 2]
                chosen = free[0] if free else crowded[0] if crowded else \
                    next(iter(self._batches)) if self._all_submitted else None
                if chosen is None:
                    continue
                worker.batch, last = chosen, not free
                queue = self._batches[chosen]
            task_id, task = queue.pop() if last else queue.popleft()
            if not queue:
                del self._batches[worker.batch]
            for key in task.shared_keys:
                if key not in worker.holds:
                    self._send(worker, ("share", key, self._shared[key]), shared=True)
                    worker.holds.add(key)
            worker.task = (task_id, task)
            worker.deadline = None if self.cell_timeout is None else time.monotonic() + self.cell_timeout
            self._send(worker, ("cell", task_id, task))

    def all_submitted(self) -> None:
        self._all_submitted = True
        self._dispatch()

    def finished(self, block: bool) -> Iterator[tuple[CellTask, Outcome]]:
        from multiprocessing.connection import wait

        while True:
            busy = [w for w in self._pool if w.task is not None]
            if not busy:
                return
            waiting = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            ready = set(wait(waiting, timeout=self._wait_seconds(busy) if block else 0))
            # A result sent after the wait returned still counts: its pipe is polled before the kill.
            overdue = [w for w in busy if w.conn not in ready and w.deadline is not None
                       and time.monotonic() >= w.deadline and not w.conn.poll()]
            for worker in overdue:
                yield from self._stop_overdue(worker)
            if not ready:
                if overdue:  # results given: wait no more, but look at whatever else is ready
                    self._dispatch()
                    block = False
                    continue
                if block:  # woken just before a deadline
                    continue
                return
            for worker in busy:
                if worker in overdue:
                    continue
                if worker.conn in ready or (worker.process.sentinel in ready and worker.conn.poll()):
                    try:
                        _, task_id, outcome, busy_s = pickle.loads(worker.conn.recv_bytes())
                    except (EOFError, OSError):
                        yield from self._replace(worker)
                        continue
                    _, task = worker.task
                    worker.task = worker.deadline = None
                    self._attempts.pop(task_id, None)
                    self._done(task, busy_s)
                    yield task, outcome
                elif worker.process.sentinel in ready:
                    yield from self._replace(worker)
            self._dispatch()
            block = False  # one wait at most; then whatever else is ready

    def _wait_seconds(self, busy: list[_Worker]) -> float | None:
        """How long to wait for a result: until the first cell's deadline (None: no deadline), at most
        LONGEST_WAIT_SECONDS."""
        deadlines = [w.deadline for w in busy if w.deadline is not None]
        return min(max(0.0, min(deadlines) - time.monotonic()), LONGEST_WAIT_SECONDS) if deadlines else None

    def _stop_overdue(self, worker: _Worker) -> Iterator[tuple[CellTask, Outcome]]:
        """A cell ran past the time limit: its worker is killed and replaced, and the cell recorded as
        failed."""
        end_group(worker.process.pid)
        worker.process.kill()
        task_id, task = self._swap_out(worker)
        self._attempts.pop(task_id, None)
        log.warning("cell %s ran past --cell-timeout %g s; its worker process was killed", task.cell.key,
                    self.cell_timeout)
        self._done(task, float(self.cell_timeout))
        yield task, timed_out(self.cell_timeout)

    def _swap_out(self, worker: _Worker) -> tuple[int, CellTask]:
        """A fresh worker takes the place of one that died or was killed; the cell it held."""
        wait_for_exit(worker.process)
        end_group(worker.process.pid)  # what the dead worker's cell started
        worker.process.join()
        held = worker.task
        worker.task = worker.deadline = None
        self._pool.remove(worker)
        with contextlib.suppress(OSError):
            worker.conn.close()
        replacement = self._spawn()
        self._pool.append(replacement)
        self._await_ready(replacement)
        return held

    def _replace(self, worker: _Worker) -> Iterator[tuple[CellTask, Outcome]]:
        """A worker died: its cell goes back to the front of its batch (or fails after MAX_ATTEMPTS
        deaths), and a fresh worker takes its place."""
        self.stats.deaths += 1
        task_id, task = self._swap_out(worker)
        code = worker.process.exitcode  # joined by _swap_out
        self._attempts[task_id] = self._attempts.get(task_id, 0) + 1
        log.warning("a worker process died (exit code %s) while evaluating cell %s", code, task.cell.key)
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
    if hasattr(os, "setpgid"):
        os.setpgid(0, 0)
    # A cell that never returns never reads the closed pipe: the driver's death is watched for apart.
    threading.Thread(target=exit_with_parent, args=(os.getppid(),), daemon=True, name="parent-watch").start()
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


def exit_with_parent(parent: int) -> None:
    """Ends this process once its parent is gone (on POSIX, an orphan's parent becomes another)."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_SECONDS)
    if hasattr(os, "killpg") and os.getpgrp() == os.getpid():  # never the driver's group
        os.killpg(0, signal.SIGKILL)  # the processes its cell started, and this one
    os._exit(0)


def wait_for_exit(process: Any, timeout: float | None = None) -> bool:
    """Whether ``process`` ended within ``timeout`` seconds, without reaping it: until it is joined its
    process id, and so its group's, cannot be reused, and :func:`end_group` reaches only its own. Not
    through its sentinel: a pipe that a process the cell started in the background may hold open."""
    if not hasattr(os, "waitid"):  # no way to wait without reaping: the group id is at worst reused late
        process.join(timeout)
        return process.exitcode is not None
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            if os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return True
        except ChildProcessError:  # reaped already: multiprocessing reaps ended children when it starts one
            return True
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def end_group(pid: int) -> None:
    """Kills what is left of the process group a worker led: the processes its cells started. Call it
    before the worker is joined (see :func:`wait_for_exit`)."""
    if hasattr(os, "killpg"):
        with contextlib.suppress(ProcessLookupError, PermissionError):  # none left / never formed
            os.killpg(pid, signal.SIGKILL)


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
