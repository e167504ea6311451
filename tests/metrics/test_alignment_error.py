import numpy as np
import pytest

from alignbench import AlignmentResult, PairedData
from alignbench.testing import toy_result
from alignbench_plugins.metrics.alignment_error import AlignmentError, unexplained_variance


def test_zero_for_identical_spaces_and_about_two_for_independent_ones():
    base = toy_result()
    rng = np.random.default_rng(0)
    z = rng.standard_normal((500, 6)).astype(np.float32)
    test = PairedData(x=z, y=z, text_item=np.arange(500))
    same = AlignmentError().compute(AlignmentResult(test, z, z, base.anchors, base.aligner))
    assert same["alignment_error_heldout"] == 0.0 and same["relative_alignment_error_heldout"] == 0.0
    other = rng.standard_normal((500, 6)).astype(np.float32)
    apart = AlignmentError().compute(AlignmentResult(test, z, other, base.anchors, base.aligner))
    assert apart["relative_alignment_error_heldout"] == pytest.approx(2.0, abs=0.2)


def test_collapse_is_not_rewarded():
    base = toy_result()
    zero = np.zeros((60, 8), dtype=np.float32)
    scores = AlignmentError().compute(AlignmentResult(base.test, zero, np.zeros((180, 8), np.float32),
                                                      base.anchors, base.aligner))
    assert scores["alignment_error_heldout"] == 0.0
    assert np.isnan(scores["relative_alignment_error_heldout"])


def test_reconstruction_error_is_zero_for_an_affine_image_of_the_latent():
    rng = np.random.default_rng(1)
    latent = rng.standard_normal((200, 2))
    assert unexplained_variance(latent @ rng.standard_normal((2, 5)) + 1.0, latent) < 1e-12
    assert unexplained_variance(latent[:, :1] * 3.0 - 1.0, latent[:, 0]) < 1e-12  # a 1-D latent is one column
    assert unexplained_variance(rng.standard_normal((200, 5)), latent) > 0.9


def in_sample_unexplained_variance(z, latent):
    """The old, in-sample form, for contrast: fitted and scored on the same rows."""
    design = np.concatenate([z, np.ones((len(z), 1))], axis=1)
    coef = np.linalg.lstsq(design, latent, rcond=None)[0]
    return ((design @ coef - latent) ** 2).sum() / ((latent - latent.mean(0)) ** 2).sum()


@pytest.mark.parametrize("width", [96, 500, 900])
def test_noise_unrelated_to_the_latent_scores_about_one_however_wide(width):
    """In sample, 900 noise columns 'explain' 1,000 latent rows almost perfectly; held out they do not."""
    rng = np.random.default_rng(2)
    latent = rng.standard_normal((1000, 4))
    noise = rng.standard_normal((1000, width))
    assert unexplained_variance(noise, latent) > 0.95
    if width == 900:
        assert in_sample_unexplained_variance(noise, latent) < 0.15


def test_a_noisy_linear_image_scores_its_noise_share():
    """latent = z B + e with Var(e) a tenth of the total: the held-out 1 - R^2 is about 0.1 (plus the
    small price of estimating 6 coefficients from 1,600 rows)."""
    rng = np.random.default_rng(3)
    z = rng.standard_normal((2000, 5))
    signal = z @ rng.standard_normal((5, 3))
    noise = rng.standard_normal((2000, 3)) * np.sqrt(signal.var(axis=0) / 9)  # noise variance 1/10 of the total
    assert unexplained_variance(z, signal + noise) == pytest.approx(0.1, abs=0.01)


def test_a_wide_space_no_longer_beats_a_narrow_one_that_holds_the_latent():
    """The audit's reversal: a 2-d space holding the latent with noise against a 500-d one holding the
    same (another draw of the noise) beside 498 columns of pure noise; in sample the wide one won."""
    rng = np.random.default_rng(4)
    latent = rng.standard_normal((1000, 2))
    narrow = latent + 0.3 * rng.standard_normal((1000, 2))
    wide = np.concatenate([latent + 0.3 * rng.standard_normal((1000, 2)), rng.standard_normal((1000, 498))], axis=1)
    assert in_sample_unexplained_variance(wide, latent) < in_sample_unexplained_variance(narrow, latent)
    assert unexplained_variance(narrow, latent) < unexplained_variance(wide, latent)


def test_too_few_rows_or_a_constant_latent_is_nan():
    assert np.isnan(unexplained_variance(np.ones((1, 3)), np.ones((1, 2))))
    assert np.isnan(unexplained_variance(np.random.default_rng(0).standard_normal((10, 3)), np.ones((10, 2))))


def test_the_order_of_the_items_does_not_matter_and_copies_share_a_fold():
    rng = np.random.default_rng(5)
    latent = rng.standard_normal((300, 3))
    latent[150:] = latent[:150]  # every item twice
    z = latent @ rng.standard_normal((3, 8)) + 0.5 * rng.standard_normal((300, 8))
    order = rng.permutation(300)
    assert unexplained_variance(z[order], latent[order]) == pytest.approx(unexplained_variance(z, latent), rel=1e-12)
    # A space that names each item (one column per item, the same for both copies) predicts nothing
    # about an item it has not seen; were copies split across folds it would recall the latent of
    # the copy it fitted on, and score near 0.
    names = np.tile(np.eye(150), (2, 1))
    assert unexplained_variance(names, latent) > 0.9


def test_useless_columns_cost_a_little_held_out_and_nothing_like_noise():
    """The documented price of width: 500 noise columns beside a noisy copy of the latent (800 rows to
    fit on) raise its error from about 0.08 to about 0.2, far from the ~1 of a space without it."""
    rng = np.random.default_rng(4)
    latent = rng.standard_normal((1000, 2))
    narrow = latent + 0.3 * rng.standard_normal((1000, 2))
    wide = np.concatenate([narrow, rng.standard_normal((1000, 498))], axis=1)
    assert unexplained_variance(narrow, latent) == pytest.approx(0.085, abs=0.01)
    assert 0.15 < unexplained_variance(wide, latent) < 0.3


def noisy_signal(rng, n=500):
    latent = rng.standard_normal((n, 2))
    return latent, latent @ rng.standard_normal((2, 4)) + 0.3 * rng.standard_normal((n, 4))


def test_directions_under_the_resolvable_scale_hold_nothing():
    # Known answer: columns at 1e-7 of the space's scale are float32 noise; the score is the score
    # of the space without them (fitting them took it from 0.148 to 0.153).
    rng = np.random.default_rng(0)
    latent, signal = noisy_signal(rng)
    with_noise = np.c_[signal, 1e-7 * rng.standard_normal((len(signal), 6))].astype(np.float32)
    alone = unexplained_variance(signal.astype(np.float32), latent)
    assert 0.1 < alone < 0.2
    assert unexplained_variance(with_noise, latent) == pytest.approx(alone, rel=1e-9)
    assert unexplained_variance(signal.astype(np.float32) * 1e-6, latent) == pytest.approx(alone, rel=1e-6)  # scale-free


def test_the_score_does_not_follow_rounding_in_nearly_collinear_directions():
    # Three columns repeat others up to 1e-6 of their scale: the spread a solver's thread count gives
    # an aligned space. Fitting the differences moved the score by 0.7%; it should not move at all.
    rng = np.random.default_rng(0)
    latent, signal = noisy_signal(rng)
    exact = np.c_[signal, signal[:, :3] + 1e-6 * rng.standard_normal((len(signal), 3))]
    scores = [unexplained_variance((exact * (1 + 1e-6 * rng.standard_normal(exact.shape))).astype(np.float32), latent)
              for _ in range(3)]
    assert scores == pytest.approx([unexplained_variance(signal.astype(np.float32), latent)] * 3, rel=1e-5)
