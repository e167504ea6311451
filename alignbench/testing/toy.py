"""Small paired data with known answers, for tests of plugins."""

from __future__ import annotations

import numpy as np
from scipy.stats import ortho_group


def random_rotation(dim: int, seed: int = 0) -> np.ndarray:
    """A ``(dim, dim)`` orthogonal matrix drawn uniformly (Haar measure)."""
    return ortho_group.rvs(dim, random_state=seed)


def rotated_pair(n: int = 300, dim: int = 16, noise: float = 0.0, seed: int = 0):
    """``x`` ``(n, dim)`` Gaussian and ``y = x Q + noise``: a pair of spaces that an orthogonal map aligns.

    Returns ``(x, y, Q)`` with float32 arrays and the float64 rotation ``Q``.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim))
    q = random_rotation(dim, seed)
    y = x @ q + noise * rng.standard_normal((n, dim))
    return x.astype(np.float32), y.astype(np.float32), q


def top1_accuracy(zx: np.ndarray, zy: np.ndarray) -> float:
    """Fraction of rows i whose nearest row of ``zy`` (cosine) is row i."""
    zx = zx / np.maximum(np.linalg.norm(zx, axis=1, keepdims=True), 1e-12)
    zy = zy / np.maximum(np.linalg.norm(zy, axis=1, keepdims=True), 1e-12)
    return float(np.mean(np.argmax(zx @ zy.T, axis=1) == np.arange(len(zx))))
