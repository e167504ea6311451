import numpy as np

from alignbench.testing import rotated_pair, top1_accuracy
from alignbench_plugins.aligners.procrustes import ProcrustesAligner


def test_recovers_a_planted_rotation_exactly():
    x, y, q = rotated_pair(n=500, dim=24, noise=0.0, seed=1)
    aligner = ProcrustesAligner(reduce="pad", normalize=False, center=False, scale=False).fit(x[:100], y[:100])
    assert np.linalg.norm(aligner.rotation_ - q) < 1e-5  # float32 inputs: ~1e-7 per entry
    zx, zy = aligner.transform_x(x[100:]), aligner.transform_y(y[100:])
    assert np.linalg.norm(zx - zy) / np.linalg.norm(zy) < 1e-6


def test_recovers_the_rotation_in_float64_to_machine_precision():
    x, y, q = rotated_pair(n=200, dim=16, seed=2)
    x64 = x.astype(np.float64)
    aligner = ProcrustesAligner(reduce="pad", normalize=False, center=False, scale=False)
    aligner._fit(x64, x64 @ q, None, None)
    assert np.abs(aligner.rotation_ - q).max() < 1e-12


def test_default_settings_align_a_rotation_with_normalizing_centring_and_pca():
    x, y, _ = rotated_pair(n=600, dim=16, noise=0.0, seed=3)
    aligner = ProcrustesAligner().fit(x[:50], y[:50], x[50:], y[50:][::-1])
    zx, zy = aligner.transform_x(x[50:]), aligner.transform_y(y[50:])
    assert np.linalg.norm(zx - zy) / np.linalg.norm(zy) < 1e-5
    assert top1_accuracy(zx, zy) == 1.0


def test_centring_removes_an_offset():
    x, y, _ = rotated_pair(n=600, dim=16, noise=0.0, seed=3)
    aligner = ProcrustesAligner(normalize=False).fit(x[:50], y[:50] + 5.0, x[50:], y[50:][::-1] + 5.0)
    zx, zy = aligner.transform_x(x[50:]), aligner.transform_y(y[50:] + 5.0)
    assert np.linalg.norm(zx - zy) / np.linalg.norm(zy) < 1e-5


def test_pca_brings_different_dimensions_to_a_common_one():
    """An 8-d latent embedded isometrically in 32 and in 20 dimensions: PCA to 8 dimensions leaves two
    rotated copies of the latent, which Procrustes aligns exactly."""
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((400, 8)) * np.linspace(1, 3, 8)
    x = latent @ np.linalg.qr(rng.standard_normal((32, 8)))[0].T
    y = latent @ np.linalg.qr(rng.standard_normal((20, 8)))[0].T
    aligner = ProcrustesAligner(dim=8, normalize=False).fit(x[:200].astype(np.float32), y[:200].astype(np.float32))
    zx, zy = aligner.transform_x(x[200:].astype(np.float32)), aligner.transform_y(y[200:].astype(np.float32))
    assert zx.shape == zy.shape == (200, 8)
    assert np.linalg.norm(zx - zy) / np.linalg.norm(zy) < 1e-4
    assert top1_accuracy(zx, zy) == 1.0


def test_is_deterministic_and_orthogonal():
    x, y, _ = rotated_pair(n=300, dim=10, noise=0.3, seed=4)
    a = ProcrustesAligner().fit(x[:30], y[:30])
    b = ProcrustesAligner().fit(x[:30].copy(), y[:30].copy())
    np.testing.assert_array_equal(a.rotation_, b.rotation_)
    np.testing.assert_array_equal(a.transform_x(x[30:]), b.transform_x(x[30:]))
    assert np.allclose(a.rotation_.T @ a.rotation_, np.eye(a.rotation_.shape[0]), atol=1e-10)


def test_fewer_anchors_than_dimensions_determine_the_map_on_their_span_only():
    """5 anchor pairs in 32 dimensions fix R on a 5-dim subspace; the rest of an SVD's U V^T was
    LAPACK's arbitrary choice, different after a one-ulp change of the inputs. The fitted map is
    the determined part: a partial isometry of rank 5, the same (to rounding) after that change."""
    x, y, q = rotated_pair(n=200, dim=32, noise=0.0, seed=4)
    options = dict(reduce="pad", normalize=False, center=False, scale=False)
    first = ProcrustesAligner(**options).fit(x[:5], y[:5]).rotation_
    nudged = np.nextafter(x[:5], np.float32(np.inf))
    second = ProcrustesAligner(**options).fit(nudged, y[:5]).rotation_
    assert np.linalg.matrix_rank(first, tol=1e-4) == 5
    np.testing.assert_allclose(first, second, atol=1e-4)
    # On the anchors' span it is the planted rotation.
    np.testing.assert_allclose(x[:5] @ first, x[:5] @ q, atol=1e-4)


def test_the_fit_report_gives_the_rank_the_anchors_determine():
    # m generic anchor pairs in 32 dimensions determine m directions (the rest map to 0), 32 or more
    # determine them all: the rank is known by construction, and equals the SVD's count.
    x, y, _ = rotated_pair(n=200, dim=32, noise=0.1, seed=5)
    options = dict(reduce="pad", normalize=False, center=False, scale=False)
    for m, rank in ((1, 1), (5, 5), (20, 20), (32, 32), (100, 32)):
        aligner = ProcrustesAligner(**options).fit(x[:m], y[:m])
        assert aligner.fit_report() == {"map_rank": rank}
        assert np.linalg.matrix_rank(aligner.rotation_, tol=1e-4) == rank
