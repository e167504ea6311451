import numpy as np
import scipy.sparse as sp

from alignbench_plugins.geometry.functional_maps import nearest_rows
from alignbench_plugins.geometry.graphs import (
    distinct_rows,
    knn, knn_graph, laplacian_eigenbasis, largest_component, top_k, top_k_numpy,
)


def test_knn_is_exact_and_blocking_does_not_matter():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    idx_small, _ = knn(x, x, 5, exclude_self=True, block_size=7)
    idx_big, sims = knn(x, x, 5, exclude_self=True, block_size=1000)
    np.testing.assert_array_equal(idx_small, idx_big)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    full = xn @ xn.T
    np.fill_diagonal(full, -np.inf)
    np.testing.assert_array_equal(idx_big, np.argsort(-full, axis=1)[:, :5])
    assert (np.diff(sims, axis=1) <= 0).all()


def test_top_k_with_and_without_torch_agrees_with_a_full_sort():
    rng = np.random.default_rng(3)
    scores = rng.standard_normal((50, 2000)).astype(np.float32)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :15]
    for select in (top_k, top_k_numpy):
        indices, values = select(scores, 15)
        np.testing.assert_array_equal(indices, expected)
        np.testing.assert_array_equal(values, np.take_along_axis(scores, expected, axis=1))


def test_top_k_breaks_ties_by_column_with_and_without_torch():
    """Rounded scores tie often (duplicated captions make exact ties): both selections give what a
    full stable sort gives, so the kNN graph does not depend on whether torch is installed."""
    rng = np.random.default_rng(5)
    scores = np.round(rng.standard_normal((200, 300)), 1).astype(np.float32)
    scores[:, 7] = scores[:, 3]  # whole tied columns, inside and at the edge of the k largest
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :15]
    for select in (top_k, top_k_numpy):
        indices, values = select(scores, 15)
        np.testing.assert_array_equal(indices, expected)
        np.testing.assert_array_equal(values, np.take_along_axis(scores, expected, axis=1))
    indices, _ = top_k(scores[:, :10], 15)  # fewer columns than k
    np.testing.assert_array_equal(indices, np.argsort(-scores[:, :10], axis=1, kind="stable"))


def test_nearest_rows_is_the_brute_force_euclidean_nearest():
    rng = np.random.default_rng(4)
    queries, points = rng.standard_normal((70, 5)), rng.standard_normal((90, 5))
    brute = np.argmin(((queries[:, None, :] - points[None, :, :]) ** 2).sum(axis=2), axis=1)
    np.testing.assert_array_equal(nearest_rows(queries, points, block_size=16), brute)


def test_graph_is_symmetric_and_eigenbasis_matches_dense_solver():
    rng = np.random.default_rng(1)
    graph, _ = knn_graph(rng.standard_normal((400, 6)).astype(np.float32), 10)
    assert abs(graph - graph.T).max() == 0
    eigenvalues, vectors = laplacian_eigenbasis(graph, 20)
    dense = graph.toarray()
    deg = dense.sum(axis=1)
    laplacian = np.eye(400) - dense / np.sqrt(np.outer(deg, deg))
    np.testing.assert_allclose(eigenvalues, np.linalg.eigvalsh(laplacian)[:20], atol=1e-8)
    assert abs(eigenvalues[0]) < 1e-8
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(20), atol=1e-8)
    np.testing.assert_allclose(laplacian @ vectors, vectors * eigenvalues, atol=1e-6)


def test_largest_component_drops_islands():
    blocks = sp.block_diag([np.ones((5, 5)), np.ones((2, 2))]).tocsr()
    assert largest_component(blocks).tolist() == [0, 1, 2, 3, 4]


def test_eigenbasis_of_a_small_degenerate_graph_does_not_depend_on_earlier_calls():
    """18 identical points (identical captions, as Fashion-MNIST has) make a near-clique: eigenvalues
    repeated many times, on a graph no bigger than ARPACK's Krylov space. ARPACK restarts there from a
    process-wide seed, so its eigenvectors changed from call to call."""
    graph, _ = knn_graph(np.ones((18, 4), np.float32), 15)
    assert largest_component(graph).size == 18
    first = laplacian_eigenbasis(graph, 50)
    for _ in range(3):
        again = laplacian_eigenbasis(graph, 50)
        np.testing.assert_array_equal(again[0], first[0])
        np.testing.assert_array_equal(again[1], first[1])
    np.testing.assert_allclose(first[1].T @ first[1], np.eye(17), atol=1e-10)


def brute_force_distinct_rows(x):
    """The definition, row by row: a row's node is the first earlier row with the same bytes, once
    -0.0 is written 0.0."""
    seen, first, inverse = {}, [], []
    for i, row in enumerate(x):
        row = np.array([0.0 if value == 0 else value for value in row], dtype=x.dtype)
        key = row.tobytes()
        if key not in seen:
            seen[key] = len(first)
            first.append(i)
        inverse.append(seen[key])
    return np.array(first), np.array(inverse)


def test_distinct_rows_is_the_first_occurrence_of_each_bitwise_distinct_row():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 24)).astype(np.float32)
    x[rng.integers(0, 500, 200)] = x[rng.integers(0, 500, 200)]  # duplicates, scattered
    x[7, 3], x[8] = 0.0, x[7]
    x[8, 3] = -0.0  # other bits, the same value and the same similarity to everything: one row
    x[9], x[10] = x[11], x[11] + np.float32(1e-7)  # a last-bit difference: two rows
    for data in (x, x.astype(np.float64), (x * 100).astype(np.int16), x[:, :5].astype(np.float16)):
        first, inverse = distinct_rows(data)
        expected_first, expected_inverse = brute_force_distinct_rows(data)
        np.testing.assert_array_equal(first, expected_first)
        np.testing.assert_array_equal(inverse, expected_inverse)
    first, inverse = distinct_rows(x)
    assert inverse[7] == inverse[8] and inverse[9] == inverse[11] != inverse[10]


def test_distinct_rows_sorts_whole_rows_when_different_rows_share_a_hash(monkeypatch):
    from alignbench_plugins.geometry import graphs

    x = np.random.default_rng(1).standard_normal((60, 5))
    x[30:] = x[:30]
    monkeypatch.setattr(graphs, "row_hashes", lambda bits: np.zeros(len(bits), np.uint64))  # every row collides
    first, inverse = distinct_rows(x)
    np.testing.assert_array_equal(first, np.arange(30))
    np.testing.assert_array_equal(inverse, np.tile(np.arange(30), 2))


def test_node_knn_is_the_search_of_the_eigenbasis_nodes_alone():
    from alignbench_plugins.geometry.graphs import graph_eigenbasis, node_knn, self_knn

    rng = np.random.default_rng(2)
    big = rng.standard_normal((300, 8)) + 10 * np.eye(8)[0]
    island = rng.standard_normal((40, 8)) - 10 * np.eye(8)[0]  # a second component, left out
    x = np.concatenate([island[:20], big, island[20:], big[:30]]).astype(np.float32)  # with duplicates
    graph_eigenbasis.memo_clear(), self_knn.memo_clear()
    nodes, _, _, _ = graph_eigenbasis(x, 10, 5)
    assert len(nodes) == 300 and self_knn.memo_info() == {"hits": 0, "misses": 1, "size": 1}
    indices, sims = node_knn(x, nodes, 10)
    assert self_knn.memo_info() == {"hits": 1, "misses": 1, "size": 1}  # the graph's own search, read again
    expected_indices, expected_sims = knn(x[nodes], x[nodes], 10, exclude_self=True)
    np.testing.assert_array_equal(indices, expected_indices)
    np.testing.assert_allclose(sims, expected_sims, rtol=0, atol=1e-6)


def test_node_knn_searches_the_nodes_afresh_when_a_neighbour_is_not_a_node_or_they_are_not_in_order():
    from alignbench_plugins.geometry.graphs import node_knn

    x = np.random.default_rng(3).standard_normal((50, 6)).astype(np.float32)
    # Not a component: half of every node's neighbours are other rows. Then all rows, in reverse.
    for nodes in (np.arange(0, 50, 2), np.arange(50)[::-1].copy()):
        indices, sims = node_knn(x, nodes, 5)
        expected_indices, expected_sims = knn(x[nodes], x[nodes], 5, exclude_self=True)
        np.testing.assert_array_equal(indices, expected_indices)
        np.testing.assert_array_equal(sims, expected_sims)
