import numpy as np

from alignbench_plugins.aligners.lstsq import LeastSquaresAligner


def test_recovers_a_known_linear_map():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 12))
    w = rng.standard_normal((12, 7))
    y = x @ w + 3.0
    aligner = LeastSquaresAligner().fit(x[:50].astype(np.float32), y[:50].astype(np.float32))
    assert np.abs(aligner.coef_ - w).max() < 1e-4
    residual = aligner.transform_x(x[50:]) - aligner.transform_y(y[50:])
    assert np.abs(residual).max() < 1e-3


def test_ridge_shrinks_the_map():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((40, 10)).astype(np.float32)
    y = rng.standard_normal((40, 10)).astype(np.float32)
    plain = LeastSquaresAligner().fit(x, y).coef_
    ridge = LeastSquaresAligner(alpha=100.0).fit(x, y).coef_
    assert np.linalg.norm(ridge) < 0.5 * np.linalg.norm(plain)
