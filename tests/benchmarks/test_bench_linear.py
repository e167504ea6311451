"""Small linear algebra: least squares by SVD (``numpy.linalg.lstsq``) vs a Cholesky solve of the float64
Gram (:func:`least_squares`), as alignment-error's reconstruction error and the lstsq aligner use it.

At 5,000 x 385 the Gram solve measured 0.45 -> 0.09 s here. With benchmarks disabled (the default
test run) each runs once at a smoke size.
"""

import numpy as np
import pytest

from alignbench_plugins.aligners.preprocessing import least_squares


def system(benchmark, n=5000, d=385, k=16, seed=0):
    if benchmark.disabled:
        n, d = 500, 40
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, d))
    return a, a[:, :k] + 0.1 * rng.standard_normal((n, k))


@pytest.mark.benchmark(group="least squares 5000 x 385")
def test_least_squares_svd(benchmark):
    a, b = system(benchmark)
    benchmark.pedantic(lambda: np.linalg.lstsq(a, b, rcond=None), rounds=3, iterations=1)


@pytest.mark.benchmark(group="least squares 5000 x 385")
def test_least_squares_gram_cholesky(benchmark):
    a, b = system(benchmark)
    coef = benchmark.pedantic(least_squares, args=(a, b), rounds=3, iterations=1)
    np.testing.assert_allclose(coef, np.linalg.lstsq(a, b, rcond=None)[0], rtol=1e-8, atol=1e-12)
