"""Functional maps between two graph eigenbases (Ovsjanikov et al. 2012), as pure functions.

Convention: ``C`` (k x k) takes spectral coefficients of a function on X to those of the
corresponding function on Y. For a point map ``T: Y -> X`` (``Pi[j, T(j)] = 1``) it is
``C = Psi^T Pi Phi``, so ``Psi C ~ Pi Phi``: row j of ``Psi C`` is the spectral embedding of the
X point that Y point j corresponds to.
"""

from __future__ import annotations

import numpy as np


def fit_functional_map(a: np.ndarray, b: np.ndarray, eigvals_x: np.ndarray, eigvals_y: np.ndarray,
                       alpha: float, ridge: float = 0.0) -> np.ndarray:
    """``argmin_C ||C A - B||^2 + alpha ||C Lx - Ly C||^2 + ridge ||C||^2``, solved row by row in
    closed form.

    a: ``(k, p)`` descriptor coefficients on X; b: ``(k, p)`` on Y; eigvals: ``(k,)``.
    Row i: ``(A A^T + alpha diag((lx - ly_i)^2) + ridge I) c_i = A b_i``.
    """
    a, b = a.astype(np.float64), b.astype(np.float64)
    gram = a @ a.T
    rhs = a @ b.T  # column i is A b_i
    k = a.shape[0]
    c = np.empty((k, k))
    for i in range(k):
        penalty = alpha * (eigvals_x - eigvals_y[i]) ** 2
        c[i] = np.linalg.solve(gram + np.diag(penalty) + (ridge + 1e-10) * np.eye(k), rhs[:, i])
    return c


def nearest_rows(queries: np.ndarray, points: np.ndarray, block_size: int = 2048) -> np.ndarray:
    """Index of the Euclidean-nearest row of ``points`` for every row of ``queries`` (exact, blocked)."""
    points = points.astype(np.float64)
    squared = (points ** 2).sum(axis=1)
    out = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), block_size):
        # ||q - p||^2 - ||q||^2, in place: the temporaries of the plain expression made this
        # memory-bound (four passes over a block of block_size x n float64).
        distances = queries[start:start + block_size].astype(np.float64) @ points.T
        distances *= -2.0
        distances += squared
        out[start:start + block_size] = np.argmin(distances, axis=1)
    return out


def point_map(c: np.ndarray, phi: np.ndarray, psi: np.ndarray) -> np.ndarray:
    """``T(j) = argmin_i ||(Psi C)_j - Phi_i||`` for every Y node j: ``(n_y,)`` indices into X nodes."""
    k = c.shape[0]
    return nearest_rows(psi[:, :k] @ c, phi[:, :k])


def map_from_points(t: np.ndarray, phi: np.ndarray, psi: np.ndarray, k: int) -> np.ndarray:
    """``C = Psi_k^T Pi Phi_k`` for the point map ``t`` (Y node j -> X node t[j])."""
    return psi[:, :k].T @ phi[t, :k]


def zoomout(c: np.ndarray, phi: np.ndarray, psi: np.ndarray, k_final: int, step: int = 1,
            fixed: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """ZoomOut (Melzi et al. 2019): alternate point map and functional map while growing k.

    ``fixed = (y_nodes, x_nodes)`` pins known correspondences (anchors) in every point map.
    """
    k = c.shape[0]
    while k < k_final:
        t = point_map(c, phi, psi)
        if fixed is not None:
            t[fixed[0]] = fixed[1]
        k = min(k + step, k_final)
        c = map_from_points(t, phi, psi, k)
    return c


def orthogonalize(c: np.ndarray) -> np.ndarray:
    """The orthogonal matrix nearest to ``c`` in Frobenius norm."""
    u, _, vt = np.linalg.svd(c)
    return u @ vt
