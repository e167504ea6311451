import numpy as np

from alignbench_plugins.datasets.synthetic_correlated import SyntheticCorrelated
from alignbench_plugins.datasets.synthetic_gmm import SyntheticGMM


def test_gmm_follows_seed_002():
    splits = SyntheticGMM(noise=0.0).load()
    train, test = splits.train, splits.test
    assert train.n_items == test.n_items == 1000
    assert train.latent.shape == (1000, 2) and set(np.unique(train.labels)) == {0, 1}
    # x = z A_x exactly: the latent is an exact linear function of x.
    coef = np.linalg.lstsq(train.x.astype(np.float64), train.latent, rcond=None)[0]
    assert np.abs(train.x @ coef - train.latent).max() < 1e-3
    # The two components are separated along the first latent axis.
    means = [train.latent[train.labels == c, 0].mean() for c in (0, 1)]
    assert means[0] < -1.5 and means[1] > 1.5


def test_correlated_has_captions_per_item_and_a_working_correlation_knob():
    splits = SyntheticCorrelated(n_items=400).load()
    assert splits.train.n_texts == 5 * splits.train.n_items
    assert np.bincount(splits.train.text_item).tolist() == [5] * splits.train.n_items

    def linear_fit_quality(correlation):
        train = SyntheticCorrelated(n_items=3000, correlation=correlation, noise=0.0, nonlinearity=False).load().train
        x = train.x[train.text_item].astype(np.float64)
        y = train.y.astype(np.float64)
        coef = np.linalg.lstsq(x, y, rcond=None)[0]
        return 1 - ((x @ coef - y) ** 2).sum() / ((y - y.mean(0)) ** 2).sum()

    low, high, full = linear_fit_quality(0.2), linear_fit_quality(0.8), linear_fit_quality(1.0)
    assert low < high < full
    assert full > 0.999  # all signal shared, no noise, linear: y is a linear function of x
    assert abs(low - 0.2) < 0.1 and abs(high - 0.8) < 0.1  # the explained share is the correlation


def test_gmm_retrieval_measures_alignment_not_float32_ties():
    """The best linear map's recall must not hinge on how near-equal scores are compared: on the
    noiseless plane it did (86% vs 29% R@1), with the default noise it does not."""
    from alignbench.arrays import l2_normalize
    from alignbench_plugins.metrics.retrieval import retrieval_ranks

    splits = SyntheticGMM().load()
    train, test = splits.train, splits.test
    design = np.c_[train.x, np.ones(len(train.x))].astype(np.float64)
    coef = np.linalg.lstsq(design, train.y.astype(np.float64), rcond=None)[0]
    zx = l2_normalize((np.c_[test.x, np.ones(len(test.x))] @ coef).astype(np.float32))
    zy = l2_normalize(test.y)
    tied_against, _ = retrieval_ranks(zx, zy, test.text_item)
    exact, _ = retrieval_ranks(zx, zy, test.text_item, tolerance=0.0)
    assert abs(np.mean(tied_against == 0) - np.mean(exact == 0)) < 0.01
