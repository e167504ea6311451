"""Centring, scaling and PCA shared by the linear aligners. Arrays in, arrays out, float64 inside.

Factorizations of small (d x d) matrices run with BLAS on one thread: with two threads on a busy
machine they ran 10-100x slower (eigh of 384 x 384: 2.4 s vs 0.025 s).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.linalg.lapack

from alignbench.arrays import l2_normalize
from alignbench.threads import single_threaded


def pca_basis(x: np.ndarray, dim: int) -> np.ndarray:
    """The top ``dim`` principal directions of centred ``x`` ``(n, d)``: a ``(d, dim)`` orthonormal basis.

    Signs are fixed (largest-magnitude entry of each direction positive) so results are deterministic.
    Directions beyond the rank of ``x`` are completed to an orthonormal basis.
    """
    x = np.asarray(x, dtype=np.float64)
    cov = x.T @ x  # (d, d), accumulated in float64
    with single_threaded():
        eigvals, eigvecs = np.linalg.eigh(cov)
    basis = eigvecs[:, ::-1][:, :dim]
    flip = np.sign(basis[np.argmax(np.abs(basis), axis=0), np.arange(basis.shape[1])])
    return basis * np.where(flip == 0, 1.0, flip)


def principal_directions(centred: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) of ``centred^T centred`` above ``tol`` times the largest, and their
    ``(d, r)`` orthonormal eigenvectors: the informative directions of ``centred`` ``(m, d)``."""
    centred = np.asarray(centred, dtype=np.float64)
    eigvals, eigvecs = np.linalg.eigh(centred.T @ centred)
    eigvals, eigvecs = eigvals[::-1], eigvecs[:, ::-1]
    keep = eigvals > tol * max(eigvals[0], np.finfo(float).tiny)
    return eigvals[keep], eigvecs[:, keep]


def whitening(x: np.ndarray, tol: float = 1e-8, max_dim: int | None = None) -> np.ndarray:
    """A ``(d, r)`` map that makes centred ``x`` ``(n, d)`` have identity covariance on its ``r``
    informative directions (:func:`principal_directions`, at most ``max_dim`` of them)."""
    eigvals, eigvecs = principal_directions(x, tol)
    eigvals, eigvecs = eigvals[:max_dim], eigvecs[:, :max_dim]
    return eigvecs / np.sqrt(eigvals / max(len(x), 1))


def rms_norm(x: np.ndarray) -> float:
    """Root-mean-square row norm, for putting two spaces on one scale."""
    value = float(np.sqrt((np.asarray(x, dtype=np.float64) ** 2).sum(axis=1).mean()))
    return value if value > 0 else 1.0


def stack_available(anchors: np.ndarray, unpaired: np.ndarray | None) -> np.ndarray:
    """All items of one side the aligner may use for unsupervised statistics (means, PCA)."""
    return anchors if unpaired is None or len(unpaired) == 0 else np.concatenate([anchors, unpaired])


@dataclass(frozen=True)
class SideTransform:
    """Per-side preparation learned from the items one side sees (no pairs needed): optional L2
    normalization, centring, scaling to unit RMS norm, and a basis to the common dimension."""

    normalize: bool
    mean: np.ndarray
    scale: float
    basis: np.ndarray

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return self.prepare(z) @ self.basis

    def prepare(self, z: np.ndarray) -> np.ndarray:
        """``(n, d)`` float64 rows normalized, centred and scaled, before the basis."""
        z = np.asarray(z, dtype=np.float64)
        if self.normalize:
            z = l2_normalize(z)
        return (z - self.mean) / self.scale


def fit_side(items: np.ndarray, dim: int, *, reduce: str = "pca", normalize: bool = True, center: bool = True,
             scale: bool = True) -> SideTransform:
    """Learn a :class:`SideTransform` to ``dim`` dimensions (``reduce="pca"``) or zero-padded to ``dim``
    (``reduce="pad"``)."""
    items = np.asarray(items, dtype=np.float64)
    if normalize:
        items = l2_normalize(items)
    mean = items.mean(axis=0) if center else np.zeros(items.shape[1])
    centred = items - mean
    factor = rms_norm(centred) if scale else 1.0
    basis = pca_basis(centred, dim) if reduce == "pca" else np.eye(items.shape[1], dim)
    return SideTransform(normalize, mean, factor, basis)


def common_dimension(dx: int, dy: int, dim: int | None, reduce: str) -> int:
    if reduce == "pca":
        return min(dim or min(dx, dy), dx, dy)
    return max(dx, dy)


# Singular values of X^T Y below this fraction of the largest are rounding, not signal.
RANK_TOL = 1e-4


def orthogonal_map(x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """``R = U V^T`` from ``svd(X^T W Y)``: the rotation taking rows of ``x`` closest to those of ``y``.

    With fewer pairs than dimensions, ``X^T W Y`` has rank r < d and every rotation that agrees on
    the r determined directions fits the pairs equally well; LAPACK picks one by the rounding of
    the input, so it changed with the CPU and the last bits of the embeddings. Only the determined
    part is kept: ``R = U_r V_r^T``, which maps the undetermined directions to 0 (an orthogonal map
    when r = d, a partial isometry otherwise).
    """
    cross = x.astype(np.float64).T @ (y if weights is None else weights[:, None] * y).astype(np.float64)
    return rotation_from_cross(cross, np.result_type(x.dtype, y.dtype))


def rotation_from_cross(cross: np.ndarray, dtype=np.float64) -> np.ndarray:
    """The determined part ``U_r V_r^T`` of ``svd(cross)`` (see :func:`orthogonal_map`), ``cross``
    being ``X^T W Y`` ``(d, d)``."""
    with single_threaded():
        u, s, vt = np.linalg.svd(cross, full_matrices=False)
    rank = int((s > RANK_TOL * s[0]).sum()) if len(s) and s[0] > 0 else 0
    return (u[:, :rank] @ vt[:rank]).astype(dtype)


# A Cholesky solve of the Gram matrix is trusted while the Gram's reciprocal condition number is above
# this (the data's condition number below 1e4): its solution then agrees with the SVD one well within
# float32 rounding. Below it, or with no more rows than columns, the SVD least squares is kept.
MIN_GRAM_RCOND = 1e-8


def least_squares(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``argmin_w ||a w - b||^2`` for ``a`` ``(n, d)``, ``b`` ``(n, k)``, in float64: ``(d, k)``.

    With more rows than columns and a well-conditioned ``a``, a Cholesky solve of the Gram ``a^T a``
    accumulated in float64 (5x faster than an SVD at n = 5000, d = 384). Otherwise numpy's SVD
    least squares, the minimum-norm solution where the system is underdetermined or rank deficient
    (least squares' double descent at as many anchors as dimensions depends on it).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape[0] > a.shape[1]:
        gram = a.T @ a
        with single_threaded():
            factor, info = scipy.linalg.lapack.dpotrf(gram, lower=0, clean=1)
            if info == 0:
                rcond, info = scipy.linalg.lapack.dpocon(factor, float(np.abs(gram).sum(axis=0).max()))
                if info == 0 and rcond > MIN_GRAM_RCOND:
                    return scipy.linalg.cho_solve((factor, False), a.T @ b, check_finite=False)
    with single_threaded():
        return np.linalg.lstsq(a, b, rcond=None)[0]
