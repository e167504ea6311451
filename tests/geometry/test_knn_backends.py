"""kNN backends: ``exact`` (the default, today's blocked top-k, unchanged) and faiss's approximate
``faiss-hnsw`` / ``faiss-ivf`` for graphs on 100k+ points. Needs the faiss extra for the latter."""

import sys

import numpy as np
import pytest

from extras import needs_extra  # tests/support

from alignbench.errors import InvalidParameterError
from alignbench_plugins.geometry.graphs import graph_eigenbasis, knn, knn_graph


def clustered(n=3000, dim=32, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((30, dim))
    return (centres[rng.integers(0, 30, n)] + 0.6 * rng.standard_normal((n, dim))).astype(np.float32)


def recall(found, exact):
    return np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found, exact)])


def test_the_default_is_the_exact_search_of_a_full_stable_sort():
    x = clustered(800)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    for queries, k, exclude_self in ((x, 15, True), (x[:50], 7, False)):
        full = (xn[: len(queries)] @ xn.T).astype(np.float32)
        if exclude_self:
            np.fill_diagonal(full, -np.inf)
        expected = np.argsort(-full, axis=1, kind="stable")[:, :k]
        for found in (knn(queries, x, k, exclude_self=exclude_self),
                      knn(queries, x, k, exclude_self=exclude_self, backend="exact")):
            assert (found[0] == expected).mean() > 0.999  # all but float32 near-ties of the two products
            np.testing.assert_allclose(found[1], np.take_along_axis(full, expected, axis=1), atol=1e-6)
    graph, sigma2 = knn_graph(x, 15)
    same, same_sigma2 = knn_graph(x, 15, backend="exact", seed=3)
    assert (graph != same).nnz == 0 and sigma2 == same_sigma2


@pytest.mark.parametrize("backend", ["faiss-hnsw", "faiss-ivf"])
def test_faiss_backends_find_the_exact_neighbours_almost_always(backend):
    needs_extra("faiss", "faiss")
    x = clustered()
    exact, exact_sims = knn(x, x, 15, exclude_self=True)
    found, sims = knn(x, x, 15, exclude_self=True, backend=backend)
    assert found.shape == (3000, 15) and found.dtype == np.int64 and sims.dtype == np.float32
    assert recall(found, exact) > 0.95
    assert not (found == np.arange(3000)[:, None]).any()  # never a point's own row
    assert (np.diff(sims, axis=1) <= 1e-6).all()  # sorted by decreasing similarity
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(sims, np.einsum("ij,ikj->ik", xn, xn[found]), atol=1e-5)  # true cosines
    again = knn(x, x, 15, exclude_self=True, backend=backend)
    np.testing.assert_array_equal(found, again[0])  # deterministic
    queries, _ = knn(x[:100], x, 5, backend=backend)  # other queries than the points
    assert recall(queries, knn(x[:100], x, 5)[0]) > 0.95


@pytest.mark.parametrize("backend", ["faiss-hnsw", "faiss-ivf"])
def test_graphs_and_eigenbases_take_the_backend(backend):
    needs_extra("faiss", "faiss")
    x = clustered(1500)
    graph, _ = knn_graph(x, 10, backend=backend)
    exact, _ = knn_graph(x, 10)
    assert abs(graph - graph.T).max() == 0
    assert graph.multiply(exact).nnz / exact.nnz > 0.95  # almost every exact edge is there
    nodes, node_of_row, eigenvalues, _ = graph_eigenbasis(x, 10, 8, backend=backend)
    _, _, exact_eigenvalues, _ = graph_eigenbasis(x, 10, 8)
    np.testing.assert_allclose(eigenvalues, exact_eigenvalues, atol=0.02)


def test_unknown_backends_and_a_missing_faiss_are_one_line_errors(monkeypatch):
    x = clustered(100)
    with pytest.raises(InvalidParameterError, match="unknown knn backend 'annoy'"):
        knn(x, x, 5, backend="annoy")
    monkeypatch.setitem(sys.modules, "faiss", None)
    with pytest.raises(InvalidParameterError, match=r"pip install 'alignbench\[faiss\]'"):
        knn(x, x, 5, backend="faiss-hnsw")


def test_fmap_and_the_geometry_metric_search_their_graphs_with_the_chosen_backend():
    needs_extra("faiss", "faiss")
    from alignbench import AlignmentResult, PairedData
    from alignbench_plugins.aligners.fmap import FunctionalMapAligner, SpectralFunctionalMapAligner
    from alignbench_plugins.metrics.geometry import Geometry

    x = clustered(1200, dim=16)
    rng = np.random.default_rng(1)
    y = (x @ np.linalg.qr(rng.standard_normal((16, 16)))[0]).astype(np.float32)  # a rotation of x
    args = (x[:60], y[:60], x[60:], y[60:][::-1].copy())
    exact = FunctionalMapAligner().fit(*args)
    approximate = FunctionalMapAligner(knn="faiss-hnsw").fit(*args)
    assert approximate.get_params()["knn"] == "faiss-hnsw"
    np.testing.assert_allclose(approximate.eigvals_x_, exact.eigvals_x_, atol=0.02)
    # A rotation keeps every cosine: the map Procrustes recovers is the same either way.
    np.testing.assert_allclose(approximate.transform_x(x[:50]), exact.transform_x(x[:50]), atol=1e-4)
    spectral = SpectralFunctionalMapAligner(knn="faiss-ivf").fit(*args)
    assert spectral.nystrom_x_.backend == "faiss-ivf" and np.isfinite(spectral.transform_y(y[:50])).all()
    test = PairedData(x=x[:300], y=y[:300], text_item=np.arange(300))
    result = AlignmentResult(test=test, zx=x[:300], zy=y[:300], anchors=None, aligner=None)
    scores = {b: Geometry(knn=b).compute(result) for b in ("exact", "faiss-hnsw")}
    assert scores["exact"]["mutual_knn"] == 1.0  # a rotation keeps every neighbour
    assert scores["faiss-hnsw"]["mutual_knn"] > 0.95 and scores["faiss-hnsw"]["knn_jaccard_aligned"] > 0.9


def test_queries_the_index_leaves_short_are_filled_exactly_and_said(caplog):
    needs_extra("faiss", "faiss")
    from alignbench_plugins.geometry.approximate_knn import approximate_knn

    x = clustered(400, dim=8)
    with caplog.at_level("WARNING"):
        found, sims = approximate_knn(x, x, 60, exclude_self=True, backend="faiss-ivf", recall_effort=0.01)
    assert (found >= 0).all() and not (found == np.arange(400)[:, None]).any()
    warned = [r.getMessage() for r in caplog.records if "filled from exact scores" in r.getMessage()]
    assert len(warned) == 1 and "faiss-ivf returned fewer than 60 neighbours" in warned[0]
