"""Null-space "perfect alignment" (seed 002): W [X; Y] = 0 solved from the stacked anchors."""

from __future__ import annotations

import numpy as np

from alignbench import Aligner

from .preprocessing import whitening


class NullSpaceAligner(Aligner):
    """Rows of ``W = [W1, -W2]`` span the (approximate) left null space of ``M = [Xa^T; Ya^T]``.

    ``M`` is ``(dx + dy, m)``. The rows are the eigenvectors of ``G = M M^T`` (float64) with the
    ``n_components`` smallest eigenvalues: the exact left null space when it is large enough, the
    least-squares approximation otherwise. Then ``z = W1 x`` and ``z = W2 y`` share one space.

    ``whiten=True`` (default) first whitens each side on its informative directions. Without it,
    rank-deficient data (embeddings that span fewer dimensions than they have) makes the null space
    far larger than ``k``, mostly trivial vectors (``W1 x = 0`` and ``W2 y = 0`` on the data), and
    which of them ``eigh`` returns is arbitrary. Whitened, the smallest eigenvalues of ``G`` are
    ``m (1 - rho_i)`` for the canonical correlations ``rho_i``: the method becomes CCA, and the
    ``k`` directions are the best-correlated ones. ``whiten=False`` is the paper's raw form.
    """

    name = "nullspace"
    description = "Perfect-alignment null space (CCA when whitened)"
    min_anchors = 2

    def __init__(self, n_components: int | None = None, whiten: bool = True, center: bool = True, tol: float = 1e-6):
        self.n_components = n_components
        self.whiten = whiten
        self.center = center
        self.tol = tol

    def _fit(self, xa, ya, xu, yu):
        xa, ya = xa.astype(np.float64), ya.astype(np.float64)
        self.mean_x_ = xa.mean(axis=0) if self.center else np.zeros(xa.shape[1])
        self.mean_y_ = ya.mean(axis=0) if self.center else np.zeros(ya.shape[1])
        xc, yc = xa - self.mean_x_, ya - self.mean_y_
        if self.whiten:
            # Centred anchors span at most m - 1 directions.
            cap = len(xa) - 1 if self.center else len(xa)
            self.proj_x_ = whitening(xc, self.tol, cap)
            self.proj_y_ = whitening(yc, self.tol, cap)
        else:
            self.proj_x_, self.proj_y_ = np.eye(xa.shape[1]), np.eye(ya.shape[1])
        rx, ry = self.proj_x_.shape[1], self.proj_y_.shape[1]
        stacked = np.concatenate([xc @ self.proj_x_, yc @ self.proj_y_], axis=1).T  # M: (rx + ry, m)
        eigvals, eigvecs = np.linalg.eigh(stacked @ stacked.T)  # ascending
        k = min(self.n_components or min(rx, ry), rx + ry)
        w = eigvecs[:, :k].T
        self.w_x_, self.w_y_ = w[:, :rx], -w[:, rx:]
        self.residuals_ = np.sqrt(np.clip(eigvals[:k], 0, None))

    def _transform_x(self, x):
        return (x - self.mean_x_) @ self.proj_x_ @ self.w_x_.T

    def _transform_y(self, y):
        return (y - self.mean_y_) @ self.proj_y_ @ self.w_y_.T
