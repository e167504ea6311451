"""Speed of the core kernels, side by side with the obvious alternative, in one run.

Run with ``python -m pytest tests/benchmarks --benchmark-enable``; compare within a group as ratios
(the machine is noisy). In the default test run (benchmarks disabled) each executes once at a
smoke size, a twenty-fifth of the benchmarked one.
"""

import numpy as np
import pytest

from alignbench.arrays import l2_normalize
from alignbench_plugins.aligners.nullspace import NullSpaceAligner
from alignbench_plugins.aligners.procrustes import ProcrustesAligner
from alignbench_plugins.metrics.retrieval import retrieval_ranks


def sized(benchmark, n: int) -> int:
    """``n`` when benchmarking, a smoke size in the default test run."""
    return n if not benchmark.disabled else max(n // 25, 40)


def caption_set(n_items, per_item=5, dim=256, seed=0):
    rng = np.random.default_rng(seed)
    zx = l2_normalize(rng.standard_normal((n_items, dim)).astype(np.float32))
    text_item = np.repeat(np.arange(n_items), per_item)
    zy = l2_normalize(zx[text_item] + rng.standard_normal((len(text_item), dim)).astype(np.float32))
    return zx, zy, text_item


def ranks_by_sorting(zx, zy, text_item):
    """The textbook way: full similarity matrix, argsort every row and column."""
    s = zx @ zy.T
    order = np.argsort(-s, axis=1)
    i2t_best = np.array([np.flatnonzero(text_item[order[i]] == i)[0] for i in range(len(zx))])
    col_order = np.argsort(-s, axis=0)
    t2i = np.argmax(col_order == text_item[None, :], axis=0)
    return i2t_best, t2i


@pytest.mark.benchmark(group="retrieval 1k images x 5k captions")
def test_retrieval_blocked_counting(benchmark):
    zx, zy, text_item = caption_set(sized(benchmark, 1000))
    benchmark(retrieval_ranks, zx, zy, text_item)


@pytest.mark.benchmark(group="retrieval 1k images x 5k captions")
def test_retrieval_full_argsort(benchmark):
    zx, zy, text_item = caption_set(sized(benchmark, 1000))
    benchmark(ranks_by_sorting, zx, zy, text_item)


@pytest.mark.benchmark(group="retrieval COCO-5k size")
def test_retrieval_blocked_counting_5k_by_25k(benchmark):
    zx, zy, text_item = caption_set(sized(benchmark, 5000))
    benchmark.pedantic(retrieval_ranks, args=(zx, zy, text_item), rounds=2, iterations=1)


def anchors(n, dx=384, dy=384, seed=1):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 64))
    x = latent @ rng.standard_normal((64, dx)) + rng.standard_normal((n, dx))
    y = latent @ rng.standard_normal((64, dy)) + rng.standard_normal((n, dy))
    return x.astype(np.float32), y.astype(np.float32)


def null_space_by_svd(x, y, k):
    """The paper's recipe: SVD of the stacked (dx + dy, m) matrix."""
    m = np.concatenate([x - x.mean(0), y - y.mean(0)], axis=1).T.astype(np.float64)
    u, _, _ = np.linalg.svd(m, full_matrices=False)
    return u[:, -k:]


@pytest.mark.benchmark(group="null space, 5k anchors, 384 + 384 dims")
def test_nullspace_gram_eigh(benchmark):
    x, y = anchors(sized(benchmark, 5000))
    benchmark(lambda: NullSpaceAligner(whiten=False, n_components=64).fit(x, y))


@pytest.mark.benchmark(group="null space, 5k anchors, 384 + 384 dims")
def test_nullspace_thin_svd(benchmark):
    x, y = anchors(sized(benchmark, 5000))
    benchmark(null_space_by_svd, x, y, 64)


@pytest.mark.benchmark(group="procrustes fit, 384 dims")
@pytest.mark.parametrize("n", [5000, 25000])
def test_procrustes_fit(benchmark, n):
    x, y = anchors(sized(benchmark, n))
    benchmark(lambda: ProcrustesAligner().fit(x, y))
