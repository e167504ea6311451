"""kNN graph search at N = 100,000 x 384 (k = 15, cosine): exact blocked top-k against faiss HNSW and
IVF, time and recall@15 against the exact neighbours, side by side.

``python -m pytest tests/benchmarks/test_bench_knn.py --benchmark-enable``: the recall is in each
result's ``extra_info``. In the default test run (benchmarks disabled) each runs once at a
twenty-fifth of the size and still checks recall. Points: a 32-d latent mixed into 384 dimensions
plus isotropic noise (the spaces of test_bench_fmap), unit-normalized by the search.
"""

import numpy as np
import pytest

from extras import needs_extra  # tests/support

from alignbench_plugins.geometry.graphs import knn

N = 100_000
K = 15
EXACT: dict[int, np.ndarray] = {}


def sized(benchmark, n: int) -> int:
    return n if not benchmark.disabled else n // 25


def points(n, dim=384, seed=0):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 32))
    return (latent @ rng.standard_normal((32, dim)) + rng.standard_normal((n, dim))).astype(np.float32)


def exact_neighbours(n: int) -> np.ndarray:
    if n not in EXACT:
        x = points(n)
        EXACT[n] = knn(x, x, K, exclude_self=True)[0]
    return EXACT[n]


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    hits = sum(len(np.intersect1d(a, b, assume_unique=True)) for a, b in zip(found, exact))
    return hits / exact.size


@pytest.mark.benchmark(group=f"kNN graph search (k={K}, cosine), 100k x 384")
@pytest.mark.parametrize("backend", ["exact", "faiss-hnsw", "faiss-ivf"])
def test_knn_backend(benchmark, backend):
    if backend != "exact":
        needs_extra("faiss", "faiss")
    n = sized(benchmark, N)
    x = points(n)
    indices, _ = benchmark.pedantic(knn, args=(x, x, K), kwargs={"exclude_self": True, "backend": backend},
                                    rounds=1, iterations=1)
    if backend == "exact":
        EXACT.setdefault(n, indices)
    recall = recall_at_k(indices, exact_neighbours(n))
    if benchmark.stats is not None:
        benchmark.extra_info["recall@15"] = recall
        benchmark.extra_info["n"] = n
    assert recall > (0.999 if backend == "exact" else 0.9)
