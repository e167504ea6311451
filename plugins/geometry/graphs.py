"""kNN graphs and Laplacian eigenbases, as measured fast on a 2-core CPU (see PERFORMANCE.md).

- kNN by blocked matrix products and ``torch.topk`` (numpy's ``argpartition`` where torch is not
  installed: 10-15x slower on a 1024 x 25,000 block, the same neighbours): exact, memory ``O(block * n)``.
- Eigenbasis of the symmetric normalized Laplacian ``L = I - D^-1/2 W D^-1/2`` from the largest
  eigenvalues of ``A = D^-1/2 W D^-1/2`` with ``eigsh(which="LA")``: shift-invert would be
  minutes at 25k nodes (LU fill-in). A disconnected graph makes ``which="LA"`` miss repeated
  eigenvalues silently, so callers restrict to the largest connected component first.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackNoConvergence, eigsh

from alignbench.arrays import l2_normalize
from alignbench.memo import memoize_by_content

from .approximate_knn import Backend, approximate_knn


def knn(queries: np.ndarray, points: np.ndarray, k: int, *, exclude_self: bool = False, block_size: int = 1024,
        backend: Backend = "exact", seed: int = 0):
    """The ``k`` most cosine-similar ``points`` for every query: exact by default (blocked matrix
    products), or approximate through faiss (``backend="faiss-hnsw"`` / ``"faiss-ivf"``, see
    ``approximate_knn``; ``seed`` seeds IVF's k-means).

    queries ``(q, d)``, points ``(n, d)``; returns ``(indices (q, k) int64, similarities (q, k))``
    sorted by decreasing similarity. ``exclude_self`` when queries are the points themselves.
    """
    if backend != "exact":
        return approximate_knn(queries, points, k, exclude_self=exclude_self, backend=backend, seed=seed)
    qn, pn = l2_normalize(np.asarray(queries, np.float32)), l2_normalize(np.asarray(points, np.float32))
    k = min(k, len(pn) - (1 if exclude_self else 0))
    indices = np.empty((len(qn), k), dtype=np.int64)
    sims = np.empty((len(qn), k), dtype=np.float32)
    for start in range(0, len(qn), block_size):
        scores = qn[start:start + block_size] @ pn.T
        if exclude_self:
            rows = np.arange(scores.shape[0])
            scores[rows, start + rows] = -np.inf
        block = slice(start, start + block_size)
        indices[block], sims[block] = top_k(scores, k)
    return indices, sims


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest entries of every row of ``scores`` ``(q, n)``, sorted decreasing, equal
    scores by increasing column: ``(indices (q, k), values (q, k))``, what a full stable sort gives.

    Selected by ``torch.topk`` (numpy's ``argpartition`` without torch), whose order among equal
    scores is unspecified; the rows where that could matter (a tie among the k + 1 largest) are
    redone by a stable sort, so the neighbours do not depend on which library is installed."""
    try:
        import torch
    except ImportError:
        return top_k_numpy(scores, k)
    values, indices = torch.topk(torch.from_numpy(scores), min(k + 1, scores.shape[1]), dim=1)
    return _ties_by_column(scores, indices.numpy(), values.numpy(), k)


def top_k_numpy(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_k` without torch."""
    return _ties_by_column(scores, *_top_numpy(scores, min(k + 1, scores.shape[1])), k)


def _top_numpy(scores: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    top = np.argpartition(-scores, m - 1, axis=1)[:, :m]
    top_scores = np.take_along_axis(scores, top, axis=1)
    order = np.argsort(-top_scores, axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1), np.take_along_axis(top_scores, order, axis=1)


def _ties_by_column(scores: np.ndarray, indices: np.ndarray, values: np.ndarray, k: int):
    """The first ``k`` of the ``k + 1`` selected, rows with a tie among them redone by a stable sort."""
    tied = np.flatnonzero((values[:, 1:] == values[:, :-1]).any(axis=1))
    indices, values = np.array(indices[:, :k]), np.array(values[:, :k])
    for row in tied:
        order = np.argsort(-scores[row], kind="stable")[:k]
        indices[row], values[row] = order, scores[row, order]
    return indices, values


def node_knn(x: np.ndarray, nodes: np.ndarray, k: int, backend: Backend = "exact", seed: int = 0):
    """``knn(x[nodes], x[nodes], k, exclude_self=True)`` for the ``nodes`` of
    ``graph_eigenbasis(x, k, ...)``: the rows of the graph's own search (:func:`self_knn` of the
    distinct rows, remembered) that are nodes, renumbered. A node's k nearest distinct rows are in
    its connected component, so these are its k nearest nodes; were one not a node (or ``nodes`` not
    increasing), the nodes are searched afresh. Returns ``(indices into nodes (m, k), similarities
    (m, k))``, which may be the memo's read-only arrays."""
    if np.any(np.diff(nodes) <= 0):  # not nodes as graph_eigenbasis gives them (increasing rows)
        return self_knn(x[nodes], k, backend, seed)
    first, _ = distinct_rows(x)
    indices, sims = self_knn(x[first], k, backend, seed)
    position = np.full(len(x), -1, dtype=np.int64)
    position[nodes] = np.arange(len(nodes))
    searched = np.flatnonzero(position[first] >= 0)
    renumbered = position[first[indices[searched]]]
    if len(searched) != len(nodes) or (renumbered < 0).any():
        return self_knn(x[nodes], k, backend, seed)
    return renumbered, sims[searched]


@memoize_by_content(maxsize=8)
def self_knn(x: np.ndarray, k: int, backend: Backend = "exact", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``knn(x, x, k, exclude_self=True)``, remembered by content (read-only results): the kNN
    graph fmap builds its eigenbasis on and the graph fmap-spectral's Nystrom extension weighs
    new points with are the same search over the same nodes."""
    return knn(x, x, k, exclude_self=True, backend=backend, seed=seed)


def gaussian_weights(sims: np.ndarray, sigma2: float | None = None) -> tuple[np.ndarray, float]:
    """``exp(-d^2 / sigma^2)`` with ``d^2 = 2 - 2 cos``; ``sigma^2`` defaults to the median ``d^2``."""
    d2 = np.maximum(2.0 - 2.0 * sims.astype(np.float64), 0.0)
    if sigma2 is None:
        sigma2 = float(np.median(d2)) or 1.0
    return np.exp(-d2 / sigma2), sigma2


def knn_graph(x: np.ndarray, k: int = 15, weighting: Literal["gaussian", "binary"] = "gaussian",
              backend: Backend = "exact", seed: int = 0):
    """Symmetric kNN graph on cosine similarity: ``(W (n, n) sparse CSR, sigma^2)``.

    An edge exists when either end is among the other's k nearest (``W = max(W, W^T)``). ``backend``:
    the kNN search (see :func:`knn`).
    """
    indices, sims = self_knn(x, k, backend, seed)
    if weighting == "gaussian":
        weights, sigma2 = gaussian_weights(sims)
    else:
        weights, sigma2 = np.ones(sims.shape), 0.0
    n = len(x)
    rows = np.repeat(np.arange(n), indices.shape[1])
    graph = sp.csr_matrix((weights.ravel(), (rows, indices.ravel())), shape=(n, n))
    return graph.maximum(graph.T).tocsr(), sigma2


def largest_component(graph: sp.spmatrix) -> np.ndarray:
    """Indices of the nodes in the largest connected component."""
    count, labels = connected_components(graph, directed=False)
    if count == 1:
        return np.arange(graph.shape[0])
    return np.flatnonzero(labels == np.argmax(np.bincount(labels)))


def laplacian_eigenbasis(graph: sp.spmatrix, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """First ``n`` eigenpairs of the symmetric normalized Laplacian of a connected graph.

    Returns ``(eigenvalues (n,) ascending in [0, 2], eigenvectors (nodes, n) orthonormal)``; the
    first pair is the trivial one (0, ``D^1/2 1`` normalized). Eigenvector signs are fixed (largest
    entry positive) so that results are deterministic.
    """
    degrees = np.asarray(graph.sum(axis=1)).ravel()
    if (degrees <= 0).any():
        raise ValueError("the graph has isolated nodes; restrict it to its largest component first")
    scale = sp.diags(1.0 / np.sqrt(degrees))
    adjacency = (scale @ graph @ scale).tocsr()
    nodes = graph.shape[0]
    n = min(n, nodes - 1)
    ncv = min(nodes, max(4 * n, 40))
    mu = None
    if ncv < nodes:
        v0 = np.random.default_rng(seed).standard_normal(nodes)
        try:
            mu, vectors = eigsh(adjacency, k=n, which="LA", v0=v0, tol=1e-8, ncv=ncv)
        except ArpackNoConvergence:
            # Near-degenerate spectra (graphs of many duplicate points) can stall ARPACK; dense eigh
            # is exact and affordable at the sizes where that happens in practice.
            if nodes > 8000:
                raise
    # When the Krylov space would be the whole graph, ARPACK gains nothing and, on reaching an
    # invariant subspace, restarts from its own process-wide random seed, so the eigenvectors of
    # a degenerate spectrum depended on earlier calls. Dense eigh is exact and cheap there.
    if mu is None:
        mu, vectors = np.linalg.eigh(adjacency.toarray())
        mu, vectors = mu[-n:], vectors[:, -n:]
    order = np.argsort(-mu)
    eigenvalues = np.clip(1.0 - mu[order], 0.0, 2.0)
    vectors = vectors[:, order]
    flip = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(n)])
    return eigenvalues, vectors * np.where(flip == 0, 1.0, flip)


def heat_kernel_signatures(eigenvalues: np.ndarray, eigenvectors: np.ndarray, n_scales: int = 16) -> np.ndarray:
    """``hks(i, t) = sum_k exp(-t lambda_k) phi_k(i)^2`` at log-spaced ``t`` over the spectrum's range
    (Sun et al. 2009): an isometry-invariant descriptor that needs no anchors. ``(nodes, n_scales)``."""
    positive = eigenvalues[eigenvalues > 1e-10]
    lo, hi = 4 * np.log(10) / positive.max(), 4 * np.log(10) / positive.min()
    times = np.geomspace(lo, hi, n_scales)
    signatures = (eigenvectors ** 2) @ np.exp(-np.outer(eigenvalues, times))
    return signatures / np.maximum(np.linalg.norm(signatures, axis=0, keepdims=True), 1e-12)


def distinct_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(first, inverse)``: the index of the first occurrence of every distinct row of ``x`` (in row
    order), and for every row the position in ``first`` of the row identical to it (bit for bit,
    with -0.0 and 0.0 one value).

    Rows are told apart by a 64-bit hash of their bits (one integer product), checked against the
    rows themselves; only if two different rows share a hash are the rows sorted whole, which
    ``np.unique(axis=0)`` does eight times slower (0.19 s against 0.023 s for 25,000 x 384 float32)."""
    if len(x) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    bits = _row_bits(x)
    _, first, inverse = np.unique(row_hashes(bits), return_index=True, return_inverse=True)
    if not np.array_equal(bits[first[inverse]], bits):  # a hash shared by different rows
        _, first, inverse = np.unique(bits, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[inverse.ravel()].astype(np.int64)


def _row_bits(x: np.ndarray) -> np.ndarray:
    """The rows' bytes as unsigned integers ``(n, m)``: equal exactly when the rows are bitwise equal,
    after -0.0 is made 0.0 (equal values, the same similarities to everything; NaN rows are equal
    when their bits are)."""
    rows = np.ascontiguousarray(x).reshape(len(x), -1)
    if np.issubdtype(rows.dtype, np.floating):
        rows = rows + rows.dtype.type(0.0)  # -0.0 + 0.0 is 0.0
    width = rows.dtype.itemsize if rows.dtype.itemsize in (1, 2, 4, 8) else 1
    return rows.view(np.uint8).reshape(len(rows), -1).view(f"u{width}")


def row_content_hashes(x: np.ndarray) -> np.ndarray:
    """A 64-bit hash of every row's values (bitwise equal rows hash equal, -0.0 as 0.0)."""
    return row_hashes(_row_bits(x))


def row_hashes(bits: np.ndarray) -> np.ndarray:
    """A 64-bit hash of every row of unsigned integers: ``sum_j bits_j w_j mod 2^64`` with fixed
    random odd weights (equal rows hash equal; different rows rarely do)."""
    weights = np.random.default_rng(0).integers(0, 2 ** 63, size=bits.shape[1], dtype=np.uint64) * 2 + 1
    return bits @ weights


@memoize_by_content(maxsize=8)
def graph_eigenbasis(x: np.ndarray, n_neighbors: int, n_eigen: int, seed: int = 0, backend: Backend = "exact"):
    """The Laplacian eigenbasis of the kNN graph on the distinct rows of ``x`` ``(n, d)``, restricted
    to the graph's largest connected component, without the trivial eigenpair.

    Identical rows are one node: the kNN graph of a multiset is not defined (which 15 of 200 copies
    of a caption are a point's nearest is decided by rounding), and a union of identical cliques has
    eigenspaces of high multiplicity whose basis is arbitrary, so a fit on it changed with the CPU.

    Returns ``(nodes (m,), node_of_row (n,), eigenvalues (k,), eigenvectors (m, k))``: ``nodes[j]``
    is the first row of ``x`` at node j, ``node_of_row[i]`` the node of row i (-1 outside the
    component); eigenvalues ascending, the trivial 0 left out (``k <= n_eigen``). ``backend``: the
    kNN search (``exact`` by default; ``faiss-hnsw`` / ``faiss-ivf`` for 100k+ rows, see :func:`knn`).

    Remembered by content (read-only results): fmap and fmap-spectral fit on the same rows in a
    cell, and the spectral metric's ground truth is the same held-out split in every cell.
    """
    first, inverse = distinct_rows(x)
    graph, _ = knn_graph(x[first], n_neighbors, backend=backend, seed=seed)
    component = largest_component(graph)
    position = np.full(len(first), -1, dtype=np.int64)
    position[component] = np.arange(len(component))
    eigenvalues, eigenvectors = laplacian_eigenbasis(graph[component][:, component], n_eigen + 1, seed=seed)
    return first[component], position[inverse], eigenvalues[1:], eigenvectors[:, 1:]
