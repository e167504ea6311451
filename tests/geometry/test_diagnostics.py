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


def test_silhouette_and_nmi_on_known_clusters():
    labels = np.repeat([0, 1, 2], 50)
    centres = np.eye(3) * 10
    z = centres[labels] + 0.1 * np.random.default_rng(4).standard_normal((150, 3))
    assert d.silhouette(z, labels) > 0.9
    assert d.normalized_mutual_information(labels, 2 - labels) == pytest.approx(1.0)
    shuffled = np.random.default_rng(5).permutation(labels)
    assert d.normalized_mutual_information(labels, shuffled) < 0.1
