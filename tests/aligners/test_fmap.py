import numpy as np
import pytest

from alignbench.testing import random_rotation, top1_accuracy
from alignbench_plugins.aligners.fmap import FunctionalMapAligner, SpectralFunctionalMapAligner
from alignbench_plugins.geometry import diagnostics as d


def isometric_pair(n=1200, m=10, seed=0):
    """Points on a curved 3-D manifold in 32-D, and a rotated copy listed in a shuffled order.

    Returns anchors, unpaired sets, and for every Y node (anchors first, then unpaired) its X item.
    """
    rng = np.random.default_rng(seed)
    x = np.tanh(rng.standard_normal((n, 3)) @ rng.standard_normal((3, 32))).astype(np.float32)
    y = (x @ random_rotation(32, seed + 1)).astype(np.float32)
    order = m + rng.permutation(n - m)
    truth = np.concatenate([np.arange(m), order])
    return x[:m], y[:m], x[m:], y[order], truth, x, y


@pytest.mark.parametrize("params", [{}, {"zoomout": 80}, {"descriptors": "hks"}, {"orthogonal": True}])
def test_recovers_the_permutation_between_isometric_spaces(params):
    xa, ya, xu, yu, truth, _, _ = isometric_pair()
    aligner = FunctionalMapAligner(**params).fit(xa, ya, xu, yu)
    accuracy = np.mean(aligner.correspondence_ == truth[aligner.nodes_y_])
    assert accuracy > 0.95
    # Same graph up to relabelling: C is diagonal up to signs (eigenvalues here are distinct).
    assert d.diagonal_dominance(aligner.C_) > 0.95
    assert d.orthogonality_error(aligner.C_) < 0.01
    assert np.allclose(np.abs(np.diag(aligner.C_)), 1, atol=0.05)
    np.testing.assert_allclose(aligner.eigvals_x_, aligner.eigvals_y_, atol=1e-6)


def test_unsupervised_fmap_needs_no_anchors():
    _, _, xu, yu, truth, _, _ = isometric_pair(m=0)
    aligner = FunctionalMapAligner().fit(xu[:0], yu[:0], xu, yu)
    assert np.mean(aligner.correspondence_ == truth[aligner.nodes_y_]) > 0.95


def test_unrelated_spaces_give_an_unstructured_map():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1000, 16)).astype(np.float32)
    y = rng.standard_normal((1000, 16)).astype(np.float32)
    aligner = FunctionalMapAligner().fit(x[:50], y[:50], x[50:], y[50:])
    assert d.diagonal_dominance(aligner.C_) < 0.3
    assert d.orthogonality_error_scale_free(aligner.C_) > 0.1


@pytest.mark.parametrize("ambient", ["orthogonal", "linear", "spectral"])
def test_held_out_items_are_aligned_in_every_ambient_mode(ambient):
    _, _, _, _, _, x, y = isometric_pair(n=1500)
    shuffled = 10 + np.random.default_rng(9).permutation(1190)  # Y's unpaired items in another order
    aligner = FunctionalMapAligner(ambient=ambient).fit(x[:10], y[:10], x[10:1200], y[shuffled])
    held_out_x, held_out_y = x[1200:], y[1200:]  # never seen in fit
    accuracy = top1_accuracy(aligner.transform_x(held_out_x), aligner.transform_y(held_out_y))
    assert accuracy > (0.9 if ambient != "spectral" else 0.5)


def test_spectral_coordinates_stay_finite_next_to_a_nearly_isolated_node():
    """A node far from its neighbours (relative to the graph's Gaussian width) has a degree that
    underflows; the Nyström extension divided by its square root and gave values of 1e46."""
    rng = np.random.default_rng(5)
    x = np.concatenate([rng.standard_normal((400, 2)) @ rng.standard_normal((2, 8)),
                        10 * rng.standard_normal((5, 8))]).astype(np.float32)  # five outliers
    y = (x @ random_rotation(8, 6)).astype(np.float32)
    aligner = FunctionalMapAligner(ambient="spectral").fit(x[:20], y[:20], x[20:], y[20:])
    z = aligner.transform_x(x[-5:])
    assert np.isfinite(z).all() and np.abs(z).max() < 1e3


def test_the_fit_report_says_what_the_map_was_fitted_on():
    # Each side is two far-apart clouds of 300 and 100 items: a 15-NN graph never links them, so the
    # largest component holds 300 of 400 items, and anchors in the small cloud are outside it.
    rng = np.random.default_rng(4)
    big, small = rng.standard_normal((300, 3)) @ rng.standard_normal((3, 16)), rng.standard_normal((100, 16))
    x = np.concatenate([small + 100.0, big]).astype(np.float32)  # rows 0..99: the small cloud
    y = (x @ random_rotation(16, 5)).astype(np.float32)
    outside = FunctionalMapAligner(n_eigen=20).fit(x[:5], y[:5], x[5:], y[5:])
    report = outside.fit_report()
    assert {key: report.pop(key) for key in ("matches", "matches_kept")} == {
        "matches": len(outside.matches_), "matches_kept": int(outside.kept_matches_.sum())}
    assert report == {"graph_share_x": 0.75, "graph_share_y": 0.75, "graph_anchors": 0, "descriptors": "hks",
                      "basis": 20}
    # Anchor descriptors asked for, none usable: heat-kernel signatures instead, reported as such.
    assert FunctionalMapAligner(n_eigen=20, descriptors="anchors").fit(x[:5], y[:5], x[5:], y[5:]) \
        .fit_report()["descriptors"] == "hks"
    inside = FunctionalMapAligner(n_eigen=20, descriptors="both").fit(x[100:105], y[100:105],
                                                                      np.delete(x, np.s_[100:105], 0),
                                                                      np.delete(y, np.s_[100:105], 0))
    assert inside.fit_report()["graph_anchors"] == 5 and inside.fit_report()["descriptors"] == "anchors+hks"


def test_the_fit_report_says_when_the_map_is_procrustes_on_the_anchors_alone():
    """Unrelated spaces: almost no match survives the cycle-consistency filter, and the report says
    so (the ambient map is then Procrustes on the anchors); a planted rotation keeps most of them."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 12)).astype(np.float32)
    unrelated = FunctionalMapAligner(n_eigen=20).fit(x[:10], rng.standard_normal((10, 12)).astype(np.float32),
                                                     x[10:], rng.standard_normal((390, 12)).astype(np.float32))
    report = unrelated.fit_report()
    assert report["matches"] == 390 and report["matches_kept"] < 0.1 * 390
    y = (x @ random_rotation(12, 1)).astype(np.float32)
    rotated = FunctionalMapAligner(n_eigen=20).fit(x[:10], y[:10], x[10:], y[10:]).fit_report()
    assert rotated["matches"] == 390 and rotated["matches_kept"] > 0.5 * 390
    assert "matches_kept" not in SpectralFunctionalMapAligner(n_eigen=20).fit(x[:10], y[:10], x[10:], y[10:]).fit_report()


def test_the_functional_map_is_the_stated_least_squares_solution_with_its_ridge():
    """``argmin ||C A - B||^2 + alpha ||C Lx - Ly C||^2 + ridge ||C||^2`` against a brute-force solve of
    the whole objective, vectorized over every entry of C at once (column-major vec)."""
    from alignbench_plugins.geometry.functional_maps import fit_functional_map

    rng = np.random.default_rng(0)
    k, p = 6, 4  # fewer descriptors than basis functions: without the ridge and alpha, C is not unique
    a, b = rng.standard_normal((k, p)), rng.standard_normal((k, p))
    lx, ly = np.sort(rng.uniform(0, 2, k)), np.sort(rng.uniform(0, 2, k))
    alpha, ridge = 0.1, 1e-3
    eye = np.eye(k)
    data = np.kron(a.T, eye)  # vec(C A) = (A^T kron I) vec(C)
    commutation = np.kron(np.diag(lx), eye) - np.kron(eye, np.diag(ly))  # vec(C Lx - Ly C)
    system = np.vstack([data, np.sqrt(alpha) * commutation, np.sqrt(ridge) * np.eye(k * k)])
    target = np.concatenate([b.reshape(-1, order="F"), np.zeros(2 * k * k)])
    expected = np.linalg.lstsq(system, target, rcond=None)[0].reshape(k, k, order="F")
    np.testing.assert_allclose(fit_functional_map(a, b, lx, ly, alpha, ridge), expected, atol=1e-8)
    assert not np.allclose(fit_functional_map(a, b, lx, ly, alpha), expected, atol=1e-6)  # the ridge counts


def test_fmap_spectral_is_fitted_as_the_seed_paper_fits_it():
    """Its code's settings: indicator probes at the anchors (A = Phi[anchors]^T), commutativity
    weight 0.1, ridge 1e-3 over 50 eigenpairs (compute_fmap_supervised); C is the minimiser of the
    stated objective; ZoomOut on request; anchor-free, heat-kernel signatures."""
    aligner = SpectralFunctionalMapAligner()
    assert (aligner.descriptors, aligner.alpha, aligner.ridge, aligner.n_eigen, aligner.zoomout, aligner.ambient) \
        == ("delta", 0.1, 1e-3, 50, 0, "spectral")
    xa, ya, xu, yu, truth, _, _ = isometric_pair(m=20)
    fitted = SpectralFunctionalMapAligner(n_eigen=20, zoomout=0).fit(xa, ya, xu, yu)
    assert fitted.fit_report()["descriptors"] == "delta"
    from alignbench_plugins.geometry.functional_maps import fit_functional_map
    from alignbench_plugins.geometry.graphs import graph_eigenbasis

    _, node_of_x, lx, phi = graph_eigenbasis(np.concatenate([xa, xu]), 15, 20, 0)
    _, node_of_y, ly, psi = graph_eigenbasis(np.concatenate([ya, yu]), 15, 20, 0)
    expected = fit_functional_map(phi[node_of_x[:20]].T, psi[node_of_y[:20]].T, lx[:20], ly[:20], 0.1, 1e-3)
    np.testing.assert_allclose(fitted.C_, expected, atol=1e-10)
    assert SpectralFunctionalMapAligner(n_eigen=20, zoomout=0).fit(xa[:0], ya[:0], xu, yu).fit_report()[
        "descriptors"] == "hks"
    refined = SpectralFunctionalMapAligner(n_eigen=20, zoomout=40).fit(xa, ya, xu, yu)
    assert refined.C_.shape == (40, 40) and refined.fit_report()["basis"] == 40
