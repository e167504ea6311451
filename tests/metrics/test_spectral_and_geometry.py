import numpy as np

from alignbench import AlignmentResult, PairedData
from alignbench.testing import random_rotation, toy_result
from alignbench_plugins.aligners.fmap import FunctionalMapAligner
from alignbench_plugins.metrics.geometry import Geometry
from alignbench_plugins.metrics.spectral import Spectral


def paired(x, y, labels=None):
    base = toy_result()
    test = PairedData(x=x, y=y, text_item=np.arange(len(x)), labels=labels)
    return test, base


def test_ground_truth_map_of_an_isometry_is_diagonal():
    rng = np.random.default_rng(0)
    x = np.tanh(rng.standard_normal((800, 3)) @ rng.standard_normal((3, 16))).astype(np.float32)
    y = (x @ random_rotation(16, 1)).astype(np.float32)
    test, base = paired(x, y)
    scores = Spectral().compute(AlignmentResult(test, x, y, base.anchors, base.aligner))
    assert scores["spectral_distance"] < 1e-6
    assert scores["gt_diagonal_dominance"] > 0.99 and scores["gt_orthogonality_error"] < 1e-3
    assert 49 < scores["gt_stable_rank"] <= 50  # an isometry maps the whole basis, every direction alike
    assert "fmap_diagonal_dominance" not in scores  # the identity aligner has no functional map


def test_fmap_diagnostics_are_reported_for_the_fitted_map():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((600, 8)).astype(np.float32)
    y = rng.standard_normal((600, 8)).astype(np.float32)
    aligner = FunctionalMapAligner().fit(x[:40], y[:40], x[40:300], y[40:300])
    test, base = paired(x[300:], y[300:])
    scores = Spectral().compute(AlignmentResult(test, aligner.transform_x(test.x), aligner.transform_y(test.y),
                                                base.anchors, aligner))
    # Unrelated spaces: the truth itself is unstructured, each row's energy spread over its k = 50
    # entries (1/k = 0.02 on the diagonal), not on the diagonal (1.0).
    assert scores["gt_diagonal_dominance"] < 0.1
    assert 0 <= scores["fmap_diagonal_dominance"] < 0.3  # its commutativity term favours the diagonal
    singular = np.linalg.svd(aligner.C_, compute_uv=False)
    assert np.isclose(scores["fmap_stable_rank"], np.sum(singular ** 2) / singular[0] ** 2)
    assert set(Spectral.higher_is_better) >= set(scores)


def test_captions_that_name_only_a_class_give_a_ground_truth_map_of_rank_at_most_the_classes():
    """Fashion-MNIST's setting: every item of a class has the same captions (its class's templates),
    so a caption node spreads evenly over its class and Pi has one distinct row per class. C_gt then
    has rank <= classes, and its orthogonality error is at least sqrt(k - classes) / k (the
    directions it sends to nothing), near the zero map's 1/sqrt(k): it says nothing of the spaces."""
    rng = np.random.default_rng(0)
    classes, per_class, templates = 3, 40, 6
    labels = np.repeat(np.arange(classes), per_class)
    x = (rng.standard_normal((classes, 16))[labels] + 0.5 * rng.standard_normal((len(labels), 16))).astype(np.float32)
    sentences = rng.standard_normal((classes * templates, 12)).astype(np.float32)
    text_sentence = (labels[:, None] * templates + np.arange(templates)[None, :]).ravel()
    test = PairedData(x=x, y=sentences[text_sentence], text_item=np.repeat(np.arange(len(labels)), templates),
                      labels=labels)
    c_gt, _, _ = Spectral(n_neighbors=5).ground_truth(test)
    k = c_gt.shape[1]
    scores = Spectral(n_neighbors=5).compute(AlignmentResult(test, test.x, test.y, toy_result().anchors,
                                                             toy_result().aligner))
    assert 3 * classes < k < classes * templates  # eigenpairs of the caption graph's 18 distinct nodes
    assert np.linalg.matrix_rank(c_gt) <= classes and 0 < scores["gt_stable_rank"] <= classes
    assert scores["gt_orthogonality_error"] >= np.sqrt(k - classes) / k - 1e-12


def test_geometry_of_a_perfect_alignment():
    rng = np.random.default_rng(2)
    labels = np.repeat(np.arange(4), 100)
    x = (np.eye(4)[labels] @ rng.standard_normal((4, 10)) * 3 + rng.standard_normal((400, 10))).astype(np.float32)
    y = (x @ random_rotation(10, 3)).astype(np.float32)
    test, base = paired(x, y, labels)
    scores = Geometry().compute(AlignmentResult(test, x, x, base.anchors, base.aligner))
    assert scores["mutual_knn"] == 1.0 and abs(scores["linear_cka"] - 1) < 1e-6
    assert scores["knn_jaccard_aligned"] == 1.0 and scores["mmd_aligned"] < 1e-12
    assert scores["nmi_aligned"] > 0.9 and scores["silhouette_aligned"] > 0.3


def test_ground_truth_map_does_not_depend_on_how_often_each_caption_repeats():
    """Each item's caption repeated 1 or 5 times (as Fashion-MNIST's templates repeat): the same
    distinct points, so the same graphs and the same C_gt, orthogonal for an isometry, without the
    trivial eigenpair."""
    rng = np.random.default_rng(0)
    x = np.tanh(rng.standard_normal((500, 3)) @ rng.standard_normal((3, 16))).astype(np.float32)
    y = (x @ random_rotation(16, 1)).astype(np.float32)
    once, lx, ly = Spectral(n_eigen=20).ground_truth(PairedData(x=x, y=y, text_item=np.arange(500)))
    text_item = np.repeat(np.arange(500), 5)
    five, lx5, ly5 = Spectral(n_eigen=20).ground_truth(PairedData(x=x, y=y[text_item], text_item=text_item))
    np.testing.assert_allclose(five, once, atol=1e-8)
    assert once.shape == (20, 20) and lx[0] > 1e-6  # the trivial eigenvalue 0 is left out
    assert np.abs(once.T @ once - np.eye(20)).max() < 1e-3

