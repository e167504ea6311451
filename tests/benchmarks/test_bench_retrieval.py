"""Retrieval and class retrieval of one cell against one bare blocked matrix product of the same shapes.

COCO size: 5,000 images x 25,000 captions x 384 dims, 10 classes. Target on 2 cores: both metrics
together within 1.5x of the bare product, which they read their ranks from (one pass, shared through
the AlignmentResult). The ratio is measured side by side in one run, alternating the product, the
metrics, and the metrics with one worker (as they ran before the pass had workers), and reported in
the benchmark's ``extra_info`` (``--benchmark-enable -s`` prints it).

With benchmarks disabled (the default test run) everything runs once at a smoke size.
"""

import time

import numpy as np
import pytest

from alignbench import AlignmentResult, PairedData
from alignbench.arrays import l2_normalize
from alignbench.testing import toy_result
from alignbench_plugins.metrics.retrieval import ClassRetrieval, Retrieval

FULL = dict(n_items=5000, per_item=5, dim=384)
SMOKE = dict(n_items=300, per_item=5, dim=384)


def cell(n_items, per_item, dim, noise=6.0, n_classes=10, seed=0):
    """An aligned test split: captions are their image plus ``noise`` times as much isotropic noise,
    items fall in ``n_classes`` classes. At 5k x 25k, ``noise=6`` gives a t2i R@1 near 0.33 (about
    CLIP ViT-B/32 on COCO); ``noise=20`` gives about 0.005 (nearly chance, the slowest case to count)."""
    rng = np.random.default_rng(seed)
    zx = l2_normalize(rng.standard_normal((n_items, dim)).astype(np.float32))
    text_item = np.repeat(np.arange(n_items), per_item)
    noise_rows = l2_normalize(rng.standard_normal((len(text_item), dim)).astype(np.float32))
    zy = l2_normalize(zx[text_item] + noise * noise_rows)
    labels = rng.integers(0, n_classes, n_items)
    return zx, zy, text_item, labels


def fresh_result(zx, zy, text_item, labels):
    """A new AlignmentResult each time, so that nothing computed for an earlier round is reused."""
    base = toy_result()
    test = PairedData(x=zx, y=zy, text_item=text_item, labels=labels)
    return AlignmentResult(test=test, zx=zx, zy=zy, anchors=base.anchors, aligner=base.aligner)


def both_metrics(result):
    return Retrieval().compute(result) | ClassRetrieval().compute(result)


def bare_blocked_matmul(zx, zy, block_size=256):
    for start in range(0, len(zx), block_size):
        zx[start:start + block_size] @ zy.T


@pytest.mark.benchmark(group="retrieval + class retrieval vs one bare product")
def test_bare_blocked_matmul(benchmark):
    zx, zy, _, _ = cell(**(SMOKE if benchmark.disabled else FULL))
    benchmark.pedantic(bare_blocked_matmul, args=(zx, zy), rounds=3, iterations=1)


def one_worker(monkeypatch):
    """The pass as it ran before it had workers: the product on BLAS's threads, the counting on one."""
    from alignbench_plugins.metrics import retrieval

    monkeypatch.setattr(retrieval, "blas_threads", lambda: 1)


def alternating(data, rounds, monkeypatch):
    """Median seconds of the bare product, both metrics, and both metrics with one worker, timed in
    turn ``rounds`` times (so that all see the same load); and the metrics' scores."""
    zx, zy = data[0], data[1]
    times = {"matmul": [], "metrics": [], "one_worker": []}
    for _ in range(rounds):
        started = time.perf_counter()
        bare_blocked_matmul(zx, zy)
        times["matmul"].append(time.perf_counter() - started)
        for name in ("metrics", "one_worker"):
            with monkeypatch.context() as patch:
                if name == "one_worker":
                    one_worker(patch)
                result = fresh_result(*data)
                started = time.perf_counter()
                scores = both_metrics(result)
                times[name].append(time.perf_counter() - started)
    return {name: float(np.median(t)) for name, t in times.items()}, scores


def report(benchmark, label, seconds):
    ratio, before = seconds["metrics"] / seconds["matmul"], seconds["one_worker"] / seconds["matmul"]
    benchmark.extra_info.update(matmul_s=seconds["matmul"], metrics_s=seconds["metrics"], ratio_to_matmul=ratio,
                                one_worker_s=seconds["one_worker"], one_worker_ratio_to_matmul=before)
    print(f"\n{label}: {seconds['metrics']:.3f} s, bare blocked matmul {seconds['matmul']:.3f} s, ratio "
          f"{ratio:.2f}; with one worker (before) {seconds['one_worker']:.3f} s, ratio {before:.2f}")


@pytest.mark.benchmark(group="retrieval + class retrieval vs one bare product")
def test_retrieval_and_class_retrieval_ratio_to_bare_matmul(benchmark, monkeypatch):
    data = cell(**(SMOKE if benchmark.disabled else FULL))
    seconds, scores = alternating(data, 1 if benchmark.disabled else 5, monkeypatch)
    assert 0 <= scores["mean_R@1"] <= 1 and 0 <= scores["class_mean_R@1"] <= 1
    report(benchmark, "retrieval + class retrieval", seconds)
    benchmark.pedantic(lambda: both_metrics(fresh_result(*data)), rounds=1, iterations=1)


@pytest.mark.benchmark(group="retrieval + class retrieval vs one bare product")
def test_retrieval_without_labels_ratio_to_bare_matmul(benchmark, monkeypatch):
    """COCO and Flickr have no labels: class retrieval reports nothing, retrieval counts instance ranks only."""
    zx, zy, text_item, _ = cell(**(SMOKE if benchmark.disabled else FULL))
    seconds, scores = alternating((zx, zy, text_item, None), 1 if benchmark.disabled else 5, monkeypatch)
    assert "class_mean_R@1" not in scores
    report(benchmark, "retrieval without labels", seconds)
    benchmark.pedantic(lambda: both_metrics(fresh_result(zx, zy, text_item, None)), rounds=1, iterations=1)
