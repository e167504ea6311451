"""Spectral diagnostics of a functional map (seed 000) and representation-similarity measures.

Formulas follow the seed paper's public code (``spectral_fmap_experiments.py``) where it defines
them; ``C`` is ``k x k``; spectra are given without the trivial eigenvalue 0, as the paper's code
drops it (:func:`alignbench_plugins.geometry.graphs.graph_eigenbasis` leaves it out).
"""

from __future__ import annotations

import numpy as np

from alignbench.arrays import l2_normalize, tie_tolerance


def diagonal_dominance(c: np.ndarray) -> float:
    """Mean over rows of ``C_ii^2 / sum_j C_ij^2``: 1 for a diagonal map, ~1/k for an unstructured one."""
    c = np.asarray(c, dtype=np.float64)
    energy = (c ** 2).sum(axis=1)
    return float(np.mean(np.diag(c) ** 2 / np.maximum(energy, 1e-300)))


def orthogonality_error(c: np.ndarray) -> float:
    """``||C^T C - I||_F / k``: 0 for an orthogonal map (area-preserving, in shape terms)."""
    c = np.asarray(c, dtype=np.float64)
    return float(np.linalg.norm(c.T @ c - np.eye(c.shape[1])) / c.shape[1])


def orthogonality_error_scale_free(c: np.ndarray) -> float:
    """``||C^T C / s - I||_F / k`` with ``s = mean(diag(C^T C))``: the same without the map's scale."""
    c = np.asarray(c, dtype=np.float64)
    gram = c.T @ c
    s = float(np.mean(np.diag(gram))) or 1.0
    return float(np.linalg.norm(gram / s - np.eye(c.shape[1])) / c.shape[1])


def stable_rank(c: np.ndarray) -> float:
    """``||C||_F^2 / ||C||_2^2``: k for an orthogonal map, at most its rank, 0 for the zero map. Unlike
    the rank it moves continuously with C: fitted maps' singular values fall smoothly to rounding
    level, where a rank's cut-off would count them by the last bits."""
    c = np.asarray(c, dtype=np.float64)
    top = float(np.linalg.norm(c, 2))
    return float(np.sum(c ** 2) / top ** 2) if top > 0 else 0.0


def commutativity_error(c: np.ndarray, eigvals_x: np.ndarray, eigvals_y: np.ndarray) -> float:
    """``||C Lx - Ly C||_F`` with the first k eigenvalues of each Laplacian on the diagonals."""
    c = np.asarray(c, dtype=np.float64)
    k = c.shape[0]
    return float(np.linalg.norm(c * eigvals_x[None, :k] - eigvals_y[:k, None] * c))


def commutativity_error_normalized(c: np.ndarray, eigvals_x: np.ndarray, eigvals_y: np.ndarray) -> float:
    """``||C Lx - Ly C||_F / (||C||_F max(lambda))``: scale-free, in [0, 1]."""
    k = c.shape[0]
    top = max(float(eigvals_x[:k].max()), float(eigvals_y[:k].max())) or 1.0
    return commutativity_error(c, eigvals_x, eigvals_y) / (float(np.linalg.norm(c)) * top or 1.0)


def spectral_distance(eigvals_x: np.ndarray, eigvals_y: np.ndarray) -> float:
    """Normalized spectral distance of two non-trivial spectra: scale each by its k-th eigenvalue
    (``l~ = l_1..k / l_k``), then ``sqrt(mean (l~x - l~y)^2)``. 0 for identical shapes of spectra,
    whatever their scale."""
    k = min(len(eigvals_x), len(eigvals_y))
    lx, ly = np.asarray(eigvals_x[:k], np.float64), np.asarray(eigvals_y[:k], np.float64)
    return float(np.sqrt(np.mean((lx / lx[-1] - ly / ly[-1]) ** 2)))


def neighbour_sets(z: np.ndarray, k: int, backend: str = "exact") -> np.ndarray:
    """``(n, k)`` indices of each row's k most cosine-similar other rows (``backend``: see
    :func:`alignbench_plugins.geometry.graphs.knn`)."""
    from .graphs import knn

    return knn(z, z, k, exclude_self=True, backend=backend)[0]


def neighbour_overlap(a: np.ndarray, b: np.ndarray, k: int, block_size: int = 256) -> np.ndarray:
    """``(n,)``: for each pair of rows, the expected size of ``N_a(i) & N_b(i)``, the sets of its k most
    cosine-similar other rows in each space, when ties at the k-th place are broken at random.

    Duplicate rows (Fashion-MNIST's first captions are 10 strings for 1,000 items) tie, and a set
    built by breaking their ties by row position would change with the order of the pairs. Instead
    each row is in ``N(i)`` with a probability: 1 above the k-th score, ``slots left / rows tied``
    at it (within float32 rounding, :func:`~alignbench.arrays.tie_tolerance`), 0 below; the two
    spaces break their ties independently, so the overlap is the sum of the products.
    Exact, in blocks of ``block_size`` rows: ``O(n^2 d)``.
    """
    a, b = l2_normalize(np.asarray(a, np.float32)), l2_normalize(np.asarray(b, np.float32))
    n, k = len(a), _neighbour_count(len(a), k)
    if n < 2:
        return np.zeros(n)
    tolerances = tie_tolerance(a, a), tie_tolerance(b, b)
    overlap = np.empty(n)
    for r0 in range(0, n, block_size):
        r1 = min(r0 + block_size, n)
        wa, wb = (_neighbour_probability(z[r0:r1] @ z.T, r0, k, tol) for z, tol in zip((a, b), tolerances))
        overlap[r0:r1] = np.einsum("ij,ij->i", wa, wb)
    return overlap


def _neighbour_count(n: int, k: int) -> int:
    """k, or every other row where there are fewer (at least 1, so that scores divide by it)."""
    return min(int(k), max(n - 1, 1))


def _neighbour_probability(scores: np.ndarray, r0: int, k: int, tolerance: float) -> np.ndarray:
    """``(rows, n)``: whether each row is among the k best-scoring others of rows ``r0..``, ties at the
    k-th place broken at random (see :func:`neighbour_overlap`)."""
    rows = np.arange(len(scores))
    scores[rows, r0 + rows] = -np.inf  # a row is not its own neighbour
    kth = -np.partition(-scores, k - 1, axis=1)[:, k - 1:k]
    sure = scores > kth + tolerance
    tied = ~sure & (scores >= kth - tolerance)
    slots = k - sure.sum(axis=1, keepdims=True)
    return sure + tied * (slots / tied.sum(axis=1, keepdims=True))


def mutual_knn(a: np.ndarray, b: np.ndarray, k: int = 10, backend: str = "exact") -> float:
    """Mutual kNN alignment (Huh et al. 2024): ``mean_i |N_a(i) & N_b(i)| / k`` for paired rows.
    ``exact``: ties broken at random, in expectation (:func:`neighbour_overlap`); the approximate
    backends take the sets their search returns."""
    if backend == "exact":
        return float(np.mean(neighbour_overlap(a, b, k)) / _neighbour_count(len(a), k))
    na, nb = neighbour_sets(a, k, backend), neighbour_sets(b, k, backend)
    return float(np.mean([len(np.intersect1d(x, y, assume_unique=True)) / k for x, y in zip(na, nb)]))


def knn_jaccard(a: np.ndarray, b: np.ndarray, k: int = 10, backend: str = "exact") -> float:
    """Mean Jaccard index of the k-neighbour sets of paired rows (1 - this is the kNN-graph mismatch).
    ``exact``: of the expected overlap ``I`` of :func:`neighbour_overlap`, ``I / (2k - I)``; the
    approximate backends take the sets their search returns."""
    if backend == "exact":
        k = _neighbour_count(len(a), k)
        overlap = neighbour_overlap(a, b, k)
        return float(np.mean(overlap / (2 * k - overlap)))
    na, nb = neighbour_sets(a, k, backend), neighbour_sets(b, k, backend)
    scores = [len(np.intersect1d(x, y, assume_unique=True)) / len(np.union1d(x, y)) for x, y in zip(na, nb)]
    return float(np.mean(scores))


def linear_cka(a: np.ndarray, b: np.ndarray) -> float:
    """Linear CKA in the feature-space form: ``||B^T A||_F^2 / (||A^T A||_F ||B^T B||_F)`` on centred
    columns (never the n x n Gram form: 7 GB at 25k items)."""
    a = np.asarray(a, np.float64) - np.mean(a, axis=0)
    b = np.asarray(b, np.float64) - np.mean(b, axis=0)
    cross = np.linalg.norm(b.T @ a) ** 2
    return float(cross / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)))


def mmd_rbf(a: np.ndarray, b: np.ndarray) -> float:
    """Squared MMD (biased) with an RBF kernel whose bandwidth is the median pairwise distance."""
    from scipy.spatial.distance import cdist

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    joint = np.concatenate([a, b])
    d2 = cdist(joint, joint, "sqeuclidean")
    sigma2 = float(np.median(d2[np.triu_indices(len(joint), 1)])) or 1.0
    kernel = np.exp(-d2 / sigma2)
    n = len(a)
    return float(kernel[:n, :n].mean() + kernel[n:, n:].mean() - 2 * kernel[:n, n:].mean())


def silhouette(z: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of the labels under cosine distance (Rousseeuw 1987)."""
    z = l2_normalize(np.asarray(z, np.float64))
    distance = 1.0 - z @ z.T
    classes, labels = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        return float("nan")
    onehot = np.eye(len(classes))[labels]
    sums = distance @ onehot  # (n, classes): total distance to each class
    counts = onehot.sum(axis=0)
    own = counts[labels] - 1
    a = sums[np.arange(len(z)), labels] / np.maximum(own, 1)
    other = sums / counts
    other[np.arange(len(z)), labels] = np.inf
    b = other.min(axis=1)
    s = (b - a) / np.maximum(np.maximum(a, b), 1e-12)
    return float(np.mean(np.where(own > 0, s, 0.0)))


def normalized_mutual_information(labels_a: np.ndarray, labels_b: np.ndarray) -> float:
    """NMI with the arithmetic-mean normalization: ``I(A; B) / ((H(A) + H(B)) / 2)``."""
    _, a = np.unique(labels_a, return_inverse=True)
    _, b = np.unique(labels_b, return_inverse=True)
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1)
    joint /= joint.sum()
    pa, pb = joint.sum(axis=1), joint.sum(axis=0)
    nz = joint > 0
    mutual = float((joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])).sum())
    entropy = -float((pa[pa > 0] * np.log(pa[pa > 0])).sum()) - float((pb[pb > 0] * np.log(pb[pb > 0])).sum())
    return 2 * mutual / entropy if entropy > 0 else 1.0
