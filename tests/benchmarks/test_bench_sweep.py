"""The default sweep at COCO scale, per stage, beside the kernel floor measured in the same run.

Data: synthetic-correlated with 768-d "images" and 384-d "captions", five captions per item, the
held-out split and the train pool of the same size: 1k x 5k, 5k x 25k (COCO's Karpathy test split),
and 20k x 100k with ``ALIGNBENCH_BENCH_LARGE=1``. Every default aligner over the default levels, the
seeds in ``ALIGNBENCH_BENCH_SEEDS`` (default ``0``), the default metrics; embeddings are given, so
this is the cached sweep.

The floor is the work the sweep cannot avoid, timed here in the same process: one blocked
similarity product of the held-out split per evaluated cell (the retrieval metrics share it), for
the fmap family the two kNN graphs of the train pool once per level (fmap-spectral reuses them), and
per fmap-spectral cell the kNN search of the held-out items among the graphs' nodes that its Nystrom
extension needs (the printed table gives each part, so the ratio without it can be read off too).

Run with ``python -m pytest tests/benchmarks/test_bench_sweep.py --benchmark-enable -s``: it prints
the per-aligner table (seconds per stage summed over cells) and the ratio to the floor. In the
default test run (benchmarks disabled) it runs once on a smoke-sized set.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict

import numpy as np
import pytest

from alignbench.cli import DEFAULT_ALIGNERS, DEFAULT_LEVELS, DEFAULT_METRICS
from alignbench.plugins import load_registry
from alignbench.runner import Runner, Sweep
from alignbench.store import ResultStore
from alignbench_plugins.geometry.graphs import graph_eigenbasis, knn, knn_graph, self_knn

SIZES = {"1k x 5k": 1000, "5k x 25k": 5000}
if os.environ.get("ALIGNBENCH_BENCH_LARGE"):
    SIZES["20k x 100k"] = 20000
SMOKE = {"n_items": 200, "dim_x": 32, "dim_y": 24}
FMAP_FAMILY = ("fmap", "fmap-spectral")


def dataset(test_items: int, smoke: bool):
    if smoke:
        return "synthetic-correlated", SMOKE
    return "synthetic-correlated", {"n_items": 2 * test_items, "dim_x": 768, "dim_y": 384, "n_captions": 5}


def blocked_product(zx: np.ndarray, zy: np.ndarray, block_size: int = 1024) -> None:
    for start in range(0, len(zx), block_size):
        zx[start:start + block_size] @ zy.T


def floor_seconds(splits, evaluated_cells: int, fmap_levels: int, spectral_cells: int) -> dict[str, float]:
    test, train = splits.test, splits.train
    self_knn.memo_clear()  # the floor's searches are timed, not found in the sweep's memo
    started = time.perf_counter()
    blocked_product(test.x[:, : test.y.shape[1]].copy(), test.y)
    product = time.perf_counter() - started
    started = time.perf_counter()
    knn_graph(train.x, 15)
    knn_graph(train.y, 15)
    graphs = time.perf_counter() - started
    # fmap-spectral places every held-out item by its kNN among the graph's nodes (Nystrom).
    nodes_x, nodes_y = graph_eigenbasis(train.x, 15, 50)[0], graph_eigenbasis(train.y, 15, 50)[0]
    started = time.perf_counter()
    knn(test.x, train.x[nodes_x], 15)
    knn(test.y, train.y[nodes_y], 15)
    extension = time.perf_counter() - started
    return {"similarity product": product * evaluated_cells, "kNN graphs": graphs * fmap_levels,
            "Nystrom kNN": extension * spectral_cells}


def stage_table(records) -> tuple[list[str], dict[str, dict[str, float]]]:
    stages: list[str] = []
    table: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for record in records:
        row = table[record.aligner]
        row["cells"] += 1
        for stage, seconds in record.timings.items():
            if stage == "metrics_s":
                continue
            if stage not in stages:
                stages.append(stage)
            row[stage] += seconds
            row["total"] += seconds
    return sorted(stages, key=lambda s: (s.startswith("metric:"), s != "fit_s", s)), table


def report(size: str, stages, table, floor: dict[str, float], wall: float) -> str:
    header = ["aligner", "cells", *[s.removesuffix("_s").removeprefix("metric:") for s in stages], "total"]
    lines = [f"\nsweep at {size} (held-out images x captions), seconds summed over cells",
             " | ".join(header), " | ".join("---" for _ in header)]
    for aligner, row in sorted(table.items(), key=lambda item: -item[1]["total"]):
        lines.append(" | ".join([aligner, str(int(row["cells"])), *(f"{row[s]:.2f}" for s in stages),
                                 f"{row['total']:.2f}"]))
    total = sum(row["total"] for row in table.values())
    floor_total = sum(floor.values())
    lines.append(f"all cells {total:.1f} s (sweep wall time {wall:.1f} s, loading included); floor "
                 + ", ".join(f"{k} {v:.1f} s" for k, v in floor.items())
                 + f" = {floor_total:.1f} s; ratio {total / floor_total:.2f}")
    return "\n".join(lines)


@pytest.mark.benchmark(group="default sweep at COCO scale")
@pytest.mark.parametrize("size", list(SIZES))
def test_default_sweep_per_stage_against_its_floor(benchmark, tmp_path, size):
    smoke = benchmark.disabled
    registry = load_registry()
    seeds = [int(s) for s in os.environ.get("ALIGNBENCH_BENCH_SEEDS", "0").split(",")]
    levels = [0, 5, 25] if smoke else list(DEFAULT_LEVELS)
    sweep = Sweep(aligners=[(name, {}) for name in DEFAULT_ALIGNERS], datasets=[dataset(SIZES[size], smoke)],
                  levels=levels, seeds=seeds, metrics=[(name, {}) for name in DEFAULT_METRICS])
    graph_eigenbasis.memo_clear()
    with ResultStore(tmp_path / "results.sqlite") as store:
        runner = Runner(registry, store)
        started = time.perf_counter()
        benchmark.pedantic(runner.run, args=(sweep,), rounds=1, iterations=1)
        wall = time.perf_counter() - started
        records = store.records(status="ok")
        splits = runner.splits_for(runner.plan(sweep)[0].config)
    assert {r.aligner for r in records} == set(DEFAULT_ALIGNERS)
    stages, table = stage_table(records)
    assert set(stages) == {"fit_s", "transform_s"} | {f"metric:{m}_s" for m in DEFAULT_METRICS}
    fmap_levels = len({(r.anchors, r.seed) for r in records if r.aligner in FMAP_FAMILY})
    spectral_cells = sum(r.aligner == "fmap-spectral" for r in records)
    floor = floor_seconds(splits, len(records), fmap_levels, spectral_cells)
    text = report(size, stages, table, floor, wall)
    print(text)
    benchmark.extra_info.update(
        table={a: dict(row) for a, row in table.items()}, floor=floor,
        ratio_to_floor=sum(row["total"] for row in table.values()) / sum(floor.values()))
