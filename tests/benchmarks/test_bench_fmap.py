"""kNN graph, Laplacian eigenbasis and the whole fmap fit at N = 5,000 and 25,000 (384-d).

Targets on 2 cores: fmap fit under 5 s at 5k and under 60 s at 25k. In the default test run
(benchmarks disabled) each runs once at a twenty-fifth of its size.
"""

import numpy as np
import pytest

from alignbench_plugins.aligners.fmap import FunctionalMapAligner
from alignbench_plugins.geometry.graphs import knn_graph, laplacian_eigenbasis, largest_component, top_k, top_k_numpy

SIZES = [5000, 25000]


def sized(benchmark, n: int) -> int:
    return n if not benchmark.disabled else n // 25


def spaces(n, dim=384, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 32))
    x = latent @ rng.standard_normal((32, dim)) + rng.standard_normal((n, dim))
    y = latent @ rng.standard_normal((32, dim)) + rng.standard_normal((n, dim))
    return x.astype(np.float32), y.astype(np.float32)


@pytest.mark.benchmark(group="kNN graph (k=15, cosine, exact)")
@pytest.mark.parametrize("n", SIZES)
def test_knn_graph(benchmark, n):
    x, _ = spaces(sized(benchmark, n))
    benchmark.pedantic(knn_graph, args=(x, 15), rounds=1, iterations=1)


@pytest.mark.benchmark(group="Laplacian eigenbasis (50 pairs, eigsh LA)")
@pytest.mark.parametrize("n", SIZES)
def test_laplacian_eigenbasis(benchmark, n):
    graph, _ = knn_graph(spaces(sized(benchmark, n))[0], 15)
    nodes = largest_component(graph)
    benchmark.pedantic(laplacian_eigenbasis, args=(graph[nodes][:, nodes], 50), rounds=1, iterations=1)


@pytest.mark.benchmark(group="fmap fit (100 anchors, the rest unpaired)")
@pytest.mark.parametrize("n", SIZES)
def test_fmap_fit(benchmark, n):
    x, y = spaces(sized(benchmark, n))
    aligner = FunctionalMapAligner()
    benchmark.pedantic(aligner.fit, args=(x[:100], y[:100], x[100:], y[100:][::-1]), rounds=1, iterations=1)


@pytest.mark.benchmark(group="kNN selection, one 1024 x 25,000 block of scores (k=15)")
@pytest.mark.parametrize("select", [top_k, top_k_numpy], ids=["torch.topk", "numpy argpartition"])
def test_top_k_selection(benchmark, select):
    scores = np.random.default_rng(0).standard_normal((1024, sized(benchmark, 25000))).astype(np.float32)
    indices, _ = benchmark(select, scores, 15)
    np.testing.assert_array_equal(indices, top_k_numpy(scores, 15)[0])
