import numpy as np
import pytest

from alignbench import AlignmentResult
from alignbench.supervision import draw_anchors
from alignbench_plugins.aligners.nullspace import NullSpaceAligner
from alignbench_plugins.datasets.synthetic_correlated import SyntheticCorrelated
from alignbench_plugins.datasets.synthetic_gmm import SyntheticGMM
from alignbench_plugins.metrics.alignment_error import AlignmentError
from alignbench_plugins.metrics.retrieval import Retrieval


def alignment_error(aligner, x, y):
    return float(((aligner.transform_x(x).astype(np.float64) - aligner.transform_y(y)) ** 2).sum(axis=1).mean())


def scale(aligner, x, y):
    zx, zy = aligner.transform_x(x).astype(np.float64), aligner.transform_y(y).astype(np.float64)
    return float(((zx - zx.mean(0)) ** 2).sum(1).mean() + ((zy - zy.mean(0)) ** 2).sum(1).mean()) / 2


def evaluate(aligner, splits, level, seed=0):
    """The project's metrics on the test split, for an aligner fitted on ``level`` drawn anchors."""
    anchors = draw_anchors(splits.train, [level], seed)[level]
    aligner.fit(anchors.x, anchors.y)
    result = AlignmentResult(test=splits.test, zx=aligner.transform_x(splits.test.x),
                             zy=aligner.transform_y(splits.test.y), anchors=anchors, aligner=aligner)
    return {**AlignmentError().compute(result), **Retrieval().compute(result)}


def linear_latent_pair(latent_dim, n=600, dim_x=20, dim_y=12, seed=0):
    """Noiseless seed 002 data: ``x = z A_x``, ``y = z A_y`` with a ``latent_dim``-dim ``z``."""
    rng = np.random.default_rng(seed)
    spread, offset = np.exp(rng.uniform(-1, 1, latent_dim)), 3 * rng.standard_normal(latent_dim)
    z = rng.standard_normal((n, latent_dim)) * spread + offset
    x = z @ rng.uniform(-5, 5, (latent_dim, dim_x))
    y = z @ rng.uniform(-5, 5, (latent_dim, dim_y))
    return x.astype(np.float32), y.astype(np.float32)


def test_seed_002_setting_reaches_near_zero_error_on_anchors_and_held_out_pairs():
    splits = SyntheticGMM(noise=0.0).load()  # noise-free: x = z A1, y = z A2 with a 2-D latent z
    train, test = splits.train, splits.test
    aligner = NullSpaceAligner().fit(train.x[:100], train.y[:100])
    assert aligner.n_components_ == 2  # the latent dimension, read from the spectrum
    assert alignment_error(aligner, train.x[:100], train.y[:100]) < 1e-8 * scale(aligner, test.x, test.y)
    # The latent is shared exactly, so the null space generalizes: held-out error is near zero too.
    assert alignment_error(aligner, test.x, test.y) < 1e-8 * scale(aligner, test.x, test.y)


@pytest.mark.parametrize("latent_dim", [1, 2, 5])
def test_noiseless_linear_data_is_aligned_exactly_from_latent_dim_plus_one_anchors(latent_dim):
    # Seed 002's claim, with centring: r + 1 anchors span the r-dim latent (their differences do),
    # so the null space found on them holds for every z. r anchors span only r - 1 directions.
    x, y = linear_latent_pair(latent_dim, seed=latent_dim)
    held_x, held_y = x[100:], y[100:]
    enough = NullSpaceAligner().fit(x[:latent_dim + 1], y[:latent_dim + 1])
    assert enough.n_components_ == latent_dim
    assert alignment_error(enough, held_x, held_y) < 1e-8 * scale(enough, held_x, held_y)
    many = NullSpaceAligner().fit(x[:100], y[:100])
    assert many.n_components_ == latent_dim
    assert alignment_error(many, held_x, held_y) < 1e-8 * scale(many, held_x, held_y)
    if latent_dim > 1:
        short = NullSpaceAligner().fit(x[:latent_dim], y[:latent_dim])
        assert alignment_error(short, held_x, held_y) > 1e-6 * scale(short, held_x, held_y)
        # Uncentred (the paper's linear form, no offset to estimate) r anchors suffice.
        linear = NullSpaceAligner(center=False).fit(x[:latent_dim], y[:latent_dim])
        assert linear.n_components_ == latent_dim
        assert alignment_error(linear, held_x, held_y) < 1e-8 * scale(linear, held_x, held_y)


def test_default_finds_the_latent_dimension_under_noise():
    # Whitened with k = min(rank) (the old default), this scored a relative held-out error of 1.85:
    # the trailing directions it kept are noise. The raw form keeps the shared latent only.
    scores = evaluate(NullSpaceAligner(), SyntheticGMM(noise=0.1).load(), 500)
    assert scores["relative_alignment_error_heldout"] < 0.1
    aligner = NullSpaceAligner().fit(*_gmm_anchors(noise=0.1, level=500))
    assert aligner.n_components_ == 2
    assert aligner.proj_x_.shape[1] == aligner.proj_y_.shape[1] == 2  # under the noise floor: dropped


def test_a_noise_floor_never_drops_a_weak_shared_signal_under_strong_modality_specific_variance():
    """A 6-d shared latent (variance 1) under 3 directions of variance 100 that each side has alone,
    and noise (variance 0.05). By variance alone the floor falls after the 3 private directions:
    cutting there kept nothing shared (relative held-out error 2.0, top-1 at chance). The shared
    directions co-vary with the other side, so the floor falls after them instead."""
    rng = np.random.default_rng(0)
    n, m, shared = 1600, 800, rng.standard_normal((1600, 6))

    def side(dim):
        core = np.concatenate([shared, 10 * rng.standard_normal((n, 3)), np.zeros((n, dim - 9))], axis=1)
        core += np.sqrt(0.05) * rng.standard_normal((n, dim))
        return (core @ np.linalg.qr(rng.standard_normal((dim, dim)))[0]).astype(np.float32)

    x, y = side(20), side(16)
    aligner = NullSpaceAligner().fit(x[:m], y[:m])
    assert aligner.noise_floor_ and aligner.proj_x_.shape[1] == aligner.proj_y_.shape[1] == 9
    assert aligner.n_components_ == 6
    zx, zy = aligner.transform_x(x[m:]).astype(np.float64), aligner.transform_y(y[m:]).astype(np.float64)
    assert alignment_error(aligner, x[m:], y[m:]) < 0.15 * scale(aligner, x[m:], y[m:])
    top1 = np.mean(np.argmax(zx @ zy.T - 0.5 * (zy ** 2).sum(1), axis=1) == np.arange(n - m))
    assert top1 > 0.3  # chance: 1/800


def _gmm_anchors(noise, level):
    anchors = draw_anchors(SyntheticGMM(noise=noise).load().train, [level], 0)[level]
    return anchors.x, anchors.y


def test_default_retrieves_on_synthetic_correlated():
    # The whitened default scored 5.9% mean R@1 here; the raw form ~86%.
    assert evaluate(NullSpaceAligner(), SyntheticCorrelated().load(), 500)["mean_R@1"] > 0.8


def test_rank_deficient_data_gives_the_whole_exact_null_space_not_an_arbitrary_part():
    # Fewer anchors than dimensions: the raw null space of M also holds trivial vectors (W1 x = 0,
    # W2 y = 0 on the data); restricted to the informative directions it is fixed, so rotating one
    # side's features changes nothing (any arbitrary choice inside the null space would).
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 40)).astype(np.float32)
    y = (x @ rng.standard_normal((40, 30)) + 0.5 * rng.standard_normal((200, 30))).astype(np.float32)
    rotation = np.linalg.qr(rng.standard_normal((40, 40)))[0].astype(np.float32)
    plain = NullSpaceAligner().fit(x[:20], y[:20])
    rotated = NullSpaceAligner().fit(x[:20] @ rotation, y[:20])
    assert plain.n_components_ == rotated.n_components_ == 19  # centred anchors span 19 directions
    for aligner, xs in ((plain, x), (rotated, x @ rotation)):
        assert alignment_error(aligner, xs[:20], y[:20]) < 1e-8 * scale(aligner, xs[20:], y[20:])

    def similarities(aligner, xs):
        zx, zy = aligner.transform_x(xs[20:]), aligner.transform_y(y[20:])
        return zx @ zy.T

    np.testing.assert_allclose(similarities(plain, x), similarities(rotated, x @ rotation), rtol=1e-3, atol=1e-3)


def test_exact_null_space_overfits_noisy_pairs():
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((600, 4))
    x = (latent @ rng.standard_normal((4, 20)) + 0.5 * rng.standard_normal((600, 20))).astype(np.float32)
    y = (latent @ rng.standard_normal((4, 16)) + 0.5 * rng.standard_normal((600, 16))).astype(np.float32)
    few = NullSpaceAligner().fit(x[:20], y[:20])  # 20 anchors < 36 dims: exact null space
    assert few.n_components_ == 16  # 19 + 16 informative directions, M of rank 19
    on_anchors = alignment_error(few, x[:20], y[:20]) / scale(few, x[20:], y[20:])
    held_out = alignment_error(few, x[20:], y[20:]) / scale(few, x[20:], y[20:])
    assert on_anchors < 1e-8 and held_out > 0.2
    many = NullSpaceAligner().fit(x[:400], y[:400])  # least squares under the noise floor: generalizes
    assert many.n_components_ == 4
    assert alignment_error(many, x[400:], y[400:]) / scale(many, x[400:], y[400:]) < 0.2 * held_out


def test_n_components_overrides_the_choice():
    x, y = _gmm_anchors(noise=0.0, level=100)
    aligner = NullSpaceAligner(n_components=1).fit(x, y)
    assert aligner.n_components_ == 1 and aligner.transform_x(x).shape == (100, 1)


def test_the_fit_report_names_the_rule_that_chose_k_for_each_kind_of_data():
    # Noiseless latent data (seed 002): zero eigenvalues, k = the latent dimension on 2 + 2 directions.
    x, y = linear_latent_pair(2)
    exact = NullSpaceAligner().fit(x[:100], y[:100])
    assert exact.fit_report() == {"k_rule": "exact", "noise_floor": False, "directions_x": 2, "directions_y": 2}
    # A 4-dim latent under noise: with fewer anchors than dimensions the null space is exact (and
    # overfits); with many, the noise floor is found and k sits at the spectrum's jump.
    rng = np.random.default_rng(0)
    latent = rng.standard_normal((600, 4))
    x = (latent @ rng.standard_normal((4, 20)) + 0.5 * rng.standard_normal((600, 20))).astype(np.float32)
    y = (latent @ rng.standard_normal((4, 16)) + 0.5 * rng.standard_normal((600, 16))).astype(np.float32)
    assert NullSpaceAligner().fit(x[:20], y[:20]).fit_report() == {"k_rule": "exact", "noise_floor": False,
                                                                   "directions_x": 19, "directions_y": 16}
    noisy = NullSpaceAligner().fit(x[:400], y[:400])  # the 4 latent directions above the noise floor (rule 2)
    assert noisy.fit_report() == {"k_rule": "gap", "noise_floor": True, "directions_x": 4, "directions_y": 4}
    assert noisy.n_components_ == 4
    # Independent noise shares nothing: no jump, so every direction of the narrower side.
    unrelated = NullSpaceAligner().fit(rng.standard_normal((400, 10)), rng.standard_normal((400, 8)))
    assert unrelated.fit_report()["k_rule"] == "all" and not unrelated.fit_report()["noise_floor"]
    assert unrelated.n_components_ == 8
    assert NullSpaceAligner(n_components=1).fit(x[:400], y[:400]).fit_report()["k_rule"] == "given"


def test_whitened_null_space_finds_the_canonical_correlations():
    rng = np.random.default_rng(1)
    n = 4000
    shared = rng.standard_normal((n, 2))
    x = np.concatenate([shared + 0.1 * rng.standard_normal((n, 2)), rng.standard_normal((n, 3))], axis=1)
    y = np.concatenate([shared[:, ::-1] + 0.1 * rng.standard_normal((n, 2)), rng.standard_normal((n, 2))], axis=1)
    aligner = NullSpaceAligner(whiten=True).fit(x.astype(np.float32), y.astype(np.float32))
    assert aligner.n_components_ == 2  # 1 - rho jumps from ~0.01 to ~1: a gap in the spectrum
    rho = 1 - aligner.residuals_ ** 2 / n  # eigenvalues of G are n (1 - rho)
    expected = 1 / (1 + 0.01)  # correlation of two noisy copies of a unit-variance signal
    np.testing.assert_allclose(rho, expected, atol=0.01)


def test_cca_option_aligns_noisy_gaussian_mixture_data():
    scores = evaluate(NullSpaceAligner(whiten=True), SyntheticGMM(noise=0.1).load(), 500)
    assert scores["relative_alignment_error_heldout"] < 0.1
