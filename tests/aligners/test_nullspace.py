import numpy as np

from alignbench_plugins.aligners.nullspace import NullSpaceAligner
from alignbench_plugins.datasets.synthetic_gmm import SyntheticGMM


def alignment_error(aligner, x, y):
    return float(((aligner.transform_x(x).astype(np.float64) - aligner.transform_y(y)) ** 2).sum(axis=1).mean())


def scale(aligner, x, y):
    zx, zy = aligner.transform_x(x).astype(np.float64), aligner.transform_y(y).astype(np.float64)
    return float(((zx - zx.mean(0)) ** 2).sum(1).mean() + ((zy - zy.mean(0)) ** 2).sum(1).mean()) / 2


def test_seed_002_setting_reaches_near_zero_error_on_anchors_and_held_out_pairs():
    splits = SyntheticGMM().load()  # noise-free: x = z A1, y = z A2 with a 2-D latent z
    train, test = splits.train, splits.test
    aligner = NullSpaceAligner(n_components=2).fit(train.x[:100], train.y[:100])
    assert alignment_error(aligner, train.x[:100], train.y[:100]) < 1e-8 * scale(aligner, test.x, test.y)
    # The latent is shared exactly, so the null space generalizes: held-out error is near zero too.
    assert alignment_error(aligner, test.x, test.y) < 1e-8 * scale(aligner, test.x, test.y)


def test_exact_null_space_overfits_noisy_pairs():
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((600, 4))
    x = (latent @ rng.standard_normal((4, 20)) + 0.5 * rng.standard_normal((600, 20))).astype(np.float32)
    y = (latent @ rng.standard_normal((4, 16)) + 0.5 * rng.standard_normal((600, 16))).astype(np.float32)
    few = NullSpaceAligner(n_components=4).fit(x[:20], y[:20])  # 20 anchors < 36 dims: exact null space
    on_anchors = alignment_error(few, x[:20], y[:20]) / scale(few, x[20:], y[20:])
    held_out = alignment_error(few, x[20:], y[20:]) / scale(few, x[20:], y[20:])
    assert on_anchors < 1e-8 and held_out > 0.5
    many = NullSpaceAligner(n_components=4).fit(x[:400], y[:400])  # least squares: generalizes
    assert alignment_error(many, x[400:], y[400:]) / scale(many, x[400:], y[400:]) < 0.5 * held_out


def test_whitened_null_space_finds_the_canonical_correlations():
    rng = np.random.default_rng(1)
    n = 4000
    shared = rng.standard_normal((n, 2))
    x = np.concatenate([shared + 0.1 * rng.standard_normal((n, 2)), rng.standard_normal((n, 3))], axis=1)
    y = np.concatenate([shared[:, ::-1] + 0.1 * rng.standard_normal((n, 2)), rng.standard_normal((n, 2))], axis=1)
    aligner = NullSpaceAligner(n_components=2).fit(x.astype(np.float32), y.astype(np.float32))
    rho = 1 - aligner.residuals_ ** 2 / n  # eigenvalues of G are n (1 - rho)
    expected = 1 / (1 + 0.01)  # correlation of two noisy copies of a unit-variance signal
    np.testing.assert_allclose(rho, expected, atol=0.01)


def test_raw_form_of_seed_002_aligns_its_anchors_exactly_in_more_dimensions():
    splits = SyntheticGMM().load()
    train = splits.train
    raw = NullSpaceAligner(whiten=False).fit(train.x[:200], train.y[:200])
    whitened = NullSpaceAligner().fit(train.x[:200], train.y[:200])
    assert raw.transform_x(train.x).shape[1] == 24  # min(dx, dy): mostly trivial null directions
    assert whitened.transform_x(train.x).shape[1] == 2  # the rank of the shared latent
    assert alignment_error(raw, train.x[:200], train.y[:200]) < 1e-8 * scale(raw, train.x, train.y)
