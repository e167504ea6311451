"""Executors on a CPU-bound sweep of many small cells: serial vs ``--workers 2`` vs Ray local, in one run.

The sweep: fmap and procrustes on synthetic-correlated (2,000 items, half of them the train pool),
7 supervision levels x 3 seeds = 42 cells, the default run metrics. Serial runs with the BLAS
threads it gets by default (what `alignbench run` does), and again with one thread; each worker process and each Ray task gets
cores/N = 1 thread. Ray's local cluster (``num_cpus=2``) is started before its sweep; its start-up
is reported on its own.

Reported per executor: the sweep's wall time and its ratio to serial; the start-up of its workers
(inside the wall time for worker processes); the mean seconds inside one cell's evaluation (equal
across executors on idle cores: a rise means the workers compete for cores); overhead per cell, the
worker-seconds after start-up not spent inside an evaluation ((wall - start-up) x workers - summed
evaluation seconds) divided by the cells (transport, scheduling, the driver's loading and idle tails
land there); bytes shipped per cell, splits (sent once per worker or put once) plus tasks.

Run with ``python -m pytest tests/benchmarks/test_bench_executors.py --benchmark-enable -s``. In the
default test run (benchmarks disabled) it runs once on a smoke-sized sweep.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from alignbench.executors import SerialExecutor
from alignbench.ray_cluster import RayExecutor
from alignbench.worker_processes import ProcessExecutor
from alignbench.plugins import load_registry
from alignbench.runner import Runner, Sweep
from alignbench.store import ResultStore

FULL = {"n_items": 2000}
SMOKE = {"n_items": 200, "dim_x": 16, "dim_y": 16, "latent_dim": 4, "specific_dim": 4}
LEVELS, SEEDS = [0, 5, 10, 25, 50, 100, 500], [0, 1, 2]


def sweep(smoke: bool) -> Sweep:
    return Sweep(aligners=[("fmap", {}), ("procrustes", {})],
                 datasets=[("synthetic-correlated", SMOKE if smoke else FULL)],
                 levels=[5, 10] if smoke else LEVELS, seeds=[0] if smoke else SEEDS)


def timed(registry, executor, the_sweep: Sweep, path) -> tuple[float, dict]:
    with ResultStore(path) as store:
        started = time.perf_counter()
        Runner(registry, store, executor=executor).run(the_sweep)
        wall = time.perf_counter() - started
        records = {r.key: r for r in store.records()}
    return wall, records


@pytest.mark.benchmark(group="executors")
def test_serial_against_two_workers_against_ray_local(benchmark, tmp_path):
    smoke = benchmark.disabled
    registry = load_registry()
    the_sweep = sweep(smoke)
    runs = {}
    serial = SerialExecutor()
    runs["serial"] = (serial, *timed(registry, serial, the_sweep, tmp_path / "serial.sqlite"))
    one_thread = SerialExecutor()
    with threadpool_limits(1):  # the same BLAS threads per cell as each worker: parallelism alone
        runs["serial, 1 thread"] = (one_thread, *timed(registry, one_thread, the_sweep, tmp_path / "one.sqlite"))
    workers = ProcessExecutor(2, threads=1)
    runs["workers 2"] = (workers, *timed(registry, workers, the_sweep, tmp_path / "workers.sqlite"))
    ray_start = None
    try:
        import ray
    except ImportError:
        ray = None
    if ray is not None:
        started = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
        ray_start = time.perf_counter() - started
        try:
            on_ray = RayExecutor()
            runs["ray local"] = (on_ray, *timed(registry, on_ray, the_sweep, tmp_path / "ray.sqlite"))
        finally:
            ray.shutdown()

    cells = len(runs["serial"][2])
    reference = runs["serial"][2]
    for name, (executor, wall, records) in runs.items():
        assert records.keys() == reference.keys() and executor.stats.cells == cells, name
        for key, record in records.items():  # same numbers (BLAS thread counts move only the last bits)
            assert record.status == reference[key].status
            for metric, value in record.metrics.items():
                assert np.isclose(value, reference[key].metrics[metric], rtol=1e-4, atol=1e-6), (name, metric)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)

    serial_wall = runs["serial"][1]
    lines = [f"{cells} cells ({'smoke' if smoke else 'fmap + procrustes, 7 levels x 3 seeds, 2,000 items'})",
             "executor | wall s | speed vs serial | start-up s | evaluation s/cell | overhead ms/cell | "
             "bytes/cell (splits + tasks) | task bytes/cell"]
    info = {}
    for name, (executor, wall, _) in runs.items():
        stats = executor.stats
        overhead = ((wall - stats.startup_s) * stats.workers - stats.busy_s) / cells
        shipped = (stats.bytes_shared + stats.bytes_tasks) / cells
        lines.append(f"{name} | {wall:.2f} | {serial_wall / wall:.2f}x | {stats.startup_s:.1f} | "
                     f"{stats.busy_s / cells:.3f} | {overhead * 1000:.0f} | {shipped:,.0f} | "
                     f"{stats.bytes_tasks / cells:,.0f}")
        info[name] = {"wall_s": wall, "speedup": serial_wall / wall, "startup_s": stats.startup_s,
                      "evaluation_s_per_cell": stats.busy_s / cells, "overhead_ms_per_cell": overhead * 1000,
                      "bytes_per_cell": shipped, "task_bytes_per_cell": stats.bytes_tasks / cells}
    if ray_start is not None:
        lines.append(f"Ray local cluster start: {ray_start:.1f} s (outside its wall time)")
    print("\n".join(lines))
    benchmark.extra_info.update(executors=info, cells=cells, ray_start_s=ray_start)
