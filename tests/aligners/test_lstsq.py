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


def test_min_norm_solution_is_kept_with_fewer_anchors_than_dimensions():
    """100 anchors in 128 dimensions: the interpolating minimum-norm map, as numpy's SVD lstsq gives it
    (least squares' double descent at as many anchors as dimensions depends on it)."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((100, 128)).astype(np.float32)
    y = rng.standard_normal((100, 64)).astype(np.float32)
    aligner = LeastSquaresAligner().fit(x, y)
    xc, yc = x.astype(np.float64) - x.mean(0, dtype=np.float64), y.astype(np.float64) - y.mean(0, dtype=np.float64)
    expected = np.linalg.lstsq(xc, yc, rcond=None)[0]
    np.testing.assert_allclose(aligner.coef_, expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(aligner.transform_x(x), aligner.transform_y(y), atol=1e-4)  # it interpolates


def test_gram_solve_agrees_with_svd_least_squares():
    from alignbench_plugins.aligners.preprocessing import least_squares

    rng = np.random.default_rng(3)
    a = rng.standard_normal((2000, 60)) @ np.diag(np.logspace(0, 2, 60))
    b = rng.standard_normal((2000, 5))
    expected = np.linalg.lstsq(a, b, rcond=None)[0]
    np.testing.assert_allclose(least_squares(a, b), expected, rtol=1e-9, atol=1e-12)
    # Rank deficient (a repeated column): the minimum-norm SVD solution, not a Cholesky one.
    deficient = np.concatenate([a, a[:, :1]], axis=1)
    np.testing.assert_allclose(least_squares(deficient, b), np.linalg.lstsq(deficient, b, rcond=None)[0],
                               rtol=1e-9, atol=1e-12)
