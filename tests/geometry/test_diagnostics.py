import numpy as np
import pytest

from alignbench.testing import random_rotation
from alignbench_plugins.geometry import diagnostics as d


def test_map_diagnostics_on_known_maps():
    identity = np.eye(10)
    assert d.diagonal_dominance(identity) == 1.0
    assert d.orthogonality_error(identity) == 0.0
    signs = np.diag([1, -1] * 5)
    assert d.diagonal_dominance(signs) == 1.0 and d.orthogonality_error(signs) == 0.0
    scaled = 3 * identity
    assert d.orthogonality_error(scaled) == pytest.approx(np.sqrt(10) * 8 / 10)
    assert d.orthogonality_error_scale_free(scaled) == pytest.approx(0.0)
    uniform = np.ones((10, 10))
    assert d.diagonal_dominance(uniform) == pytest.approx(0.1)


def test_commutativity_is_zero_for_equal_spectra_and_diagonal_maps():
    lam = np.linspace(0, 1, 8)
    assert d.commutativity_error(np.eye(8), lam, lam) == 0.0
    assert d.commutativity_error(np.eye(8), lam, lam + 0.1) == pytest.approx(0.1 * np.sqrt(8))
    assert 0 < d.commutativity_error_normalized(random_rotation(8), lam, lam) <= 1


def test_spectral_distance_is_zero_for_identical_and_scaled_spectra():
    lam = np.sort(np.random.default_rng(0).uniform(0.1, 1, 49))  # non-trivial spectra
    assert d.spectral_distance(lam, lam) == 0.0
    assert d.spectral_distance(lam, 0.5 * lam) == pytest.approx(0.0, abs=1e-15)
    assert d.spectral_distance(lam, np.linspace(0.1, 1, 49)) > 0.01


def test_similarity_measures_on_known_cases():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((300, 12))
    rotated = a @ random_rotation(12, 3)
    assert d.mutual_knn(a, rotated) == 1.0 and d.knn_jaccard(a, rotated) == 1.0
    assert d.linear_cka(a, rotated) == pytest.approx(1.0)
    other = rng.standard_normal((300, 12))
    assert d.mutual_knn(a, other) < 0.15 and d.linear_cka(a, other) < 0.2
    assert d.mmd_rbf(a[:150], a[150:]) < 0.02 < d.mmd_rbf(a[:150], a[150:] + 2.0)


def tied_classes(n_classes=6, size=20, dim=16, seed=0):
    """``a``: well-separated classes, each row's 10 nearest others in its own class; ``b``: one row per
    class repeated (every same-class row tied with every other)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_classes), size)
    centres = 10 * np.eye(dim)[:n_classes]
    a = centres[labels] + 0.1 * rng.standard_normal((len(labels), dim))
    return a, centres[labels] + 0.1 * rng.standard_normal((1, dim)), labels


def test_tied_neighbours_count_in_expectation():
    """Known by construction: in ``b`` a row's 10 neighbours are a random 10 of the 19 other rows of its
    class, in ``a`` 10 of them for sure, so each overlap is 10 x 10/19."""
    a, b, _ = tied_classes()
    np.testing.assert_allclose(d.neighbour_overlap(a, b, 10), 100 / 19)
    assert d.mutual_knn(a, b, 10) == pytest.approx(10 / 19)
    assert d.knn_jaccard(a, b, 10) == pytest.approx((100 / 19) / (20 - 100 / 19))


def test_tied_neighbours_match_ties_broken_at_random():
    """Independent check: breaking the ties by random jitter far below the other distances, the set
    overlap averages to the expectation."""
    a, b, labels = tied_classes(n_classes=3, size=12, seed=1)
    b[: len(b) // 2] = b[0]  # ties across classes too: half of the rows are one point
    expected = d.neighbour_overlap(a, b, 5)
    rng = np.random.default_rng(2)
    draws = [d.neighbour_sets(b + 0.05 * rng.standard_normal(b.shape), 5) for _ in range(400)]
    na = d.neighbour_sets(a, 5)
    sampled = np.mean([[len(np.intersect1d(x, y)) for x, y in zip(na, nb)] for nb in draws], axis=0)
    np.testing.assert_allclose(sampled, expected, atol=0.25)
    assert np.abs(sampled - expected).mean() < 0.08


def test_the_knn_scores_do_not_depend_on_the_order_of_the_pairs():
    a, b, _ = tied_classes(seed=3)
    order = np.random.default_rng(4).permutation(len(a))
    assert d.mutual_knn(a[order], b[order]) == d.mutual_knn(a, b)
    assert d.knn_jaccard(a[order], b[order]) == d.knn_jaccard(a, b)


def test_silhouette_and_nmi_on_known_clusters():
    labels = np.repeat([0, 1, 2], 50)
    centres = np.eye(3) * 10
    z = centres[labels] + 0.1 * np.random.default_rng(4).standard_normal((150, 3))
    assert d.silhouette(z, labels) > 0.9
    assert d.normalized_mutual_information(labels, 2 - labels) == pytest.approx(1.0)
    shuffled = np.random.default_rng(5).permutation(labels)
    assert d.normalized_mutual_information(labels, shuffled) < 0.1
