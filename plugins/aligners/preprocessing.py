"""Centring, scaling and PCA shared by the linear aligners. Arrays in, arrays out, float64 inside."""

from __future__ import annotations

import numpy as np


def pca_basis(x: np.ndarray, dim: int) -> np.ndarray:
    """The top ``dim`` principal directions of centred ``x`` ``(n, d)``: a ``(d, dim)`` orthonormal basis.

    Signs are fixed (largest-magnitude entry of each direction positive) so results are deterministic.
    Directions beyond the rank of ``x`` are completed to an orthonormal basis.
    """
    x = np.asarray(x, dtype=np.float64)
    cov = x.T @ x
    eigvals, eigvecs = np.linalg.eigh(cov)
    basis = eigvecs[:, ::-1][:, :dim]
    flip = np.sign(basis[np.argmax(np.abs(basis), axis=0), np.arange(basis.shape[1])])
    return basis * np.where(flip == 0, 1.0, flip)


def whitening(x: np.ndarray, tol: float = 1e-8, max_dim: int | None = None) -> np.ndarray:
    """A ``(d, r)`` map that makes centred ``x`` ``(n, d)`` have identity covariance on its ``r``
    informative directions (eigenvalues above ``tol`` times the largest)."""
    x = np.asarray(x, dtype=np.float64)
    eigvals, eigvecs = np.linalg.eigh(x.T @ x / max(len(x), 1))
    order = np.argsort(eigvals)[::-1]
    eigvals, eigvecs = eigvals[order], eigvecs[:, order]
    keep = eigvals > tol * max(eigvals[0], np.finfo(float).tiny)
    if max_dim is not None:
        keep &= np.arange(len(eigvals)) < max_dim
    return eigvecs[:, keep] / np.sqrt(eigvals[keep])


def rms_norm(x: np.ndarray) -> float:
    """Root-mean-square row norm, for putting two spaces on one scale."""
    value = float(np.sqrt((np.asarray(x, dtype=np.float64) ** 2).sum(axis=1).mean()))
    return value if value > 0 else 1.0


def stack_available(anchors: np.ndarray, unpaired: np.ndarray | None) -> np.ndarray:
    """All items of one side the aligner may use for unsupervised statistics (means, PCA)."""
    return anchors if unpaired is None or len(unpaired) == 0 else np.concatenate([anchors, unpaired])
