"""Null-space "perfect alignment" (seed 002): W [X; Y] = 0 solved from the stacked anchors."""

from __future__ import annotations

import numpy as np

from alignbench import Aligner, Range

from .preprocessing import principal_directions, whitening


class NullSpaceAligner(Aligner):
    """Rows of ``W = [W1, -W2]`` span the (approximate) left null space of ``M = [Xa^T; Ya^T]``.

    ``M`` is ``(rx + ry, m)``: each side's centred anchors in its informative principal directions
    (an orthonormal basis, not rescaled, so distances are the raw ones). The rows of ``W`` are the
    eigenvectors of ``G = M M^T`` (float64) with the ``k`` smallest eigenvalues: the exact left null
    space when there is one, the least-squares approximation otherwise. Then ``z = W1 x`` and
    ``z = W2 y`` share one ``k``-dim space. This is the paper's raw method (on full-rank data the
    principal basis is a rotation and changes nothing), centred by default: the map is then affine,
    which real embeddings need, and noiseless rank-``r`` latent data take ``r + 1`` anchors to align
    exactly. ``center=False`` is the paper's linear form, exact from ``r`` anchors on linear data.

    Informative directions: eigenvalues of ``Xa^T Xa`` above ``tol`` times the largest (``rx`` of
    them; ``ry`` on the y side), or above a noise floor (rule 2). Without this step, rank-deficient
    data (real embeddings with fewer anchors than dimensions, data on a low-dimensional latent) has
    a huge trivial null space (``W1 x = 0`` and ``W2 y = 0`` on the data), from which ``eigh``
    returns arbitrary vectors.

    ``k`` (fitted as ``n_components_``; ``n_components`` overrides it) comes from the spectrum
    ``mu_1 <= mu_2 <= ...`` of ``G``, with ``k <= min(rx, ry)``:

    1. Exact null space: the eigenvalues below ``tol * mu_max`` are zero; ``k`` is their number
       (seed 002's perfect alignment; on noiseless rank-``r`` latent data, ``k = r``).
    2. Otherwise the data is noisy. If both sides' principal spectra fall, at the same position
       ``c``, by a factor of at least ``gap`` onto a floor holding at most ``1/gap`` of the
       variance, and no direction under it is correlated with the other side beyond chance (noise
       does not co-vary with the other side; a weak shared signal under strong modality-specific
       variance does), the directions under that noise floor are dropped (``rx = ry = c``) and
       ``G`` is recomputed. Noise directions would otherwise sit among the smallest eigenvalues of ``G``:
       they align nothing, they are merely small.
    3. ``k`` is at the largest jump ``mu_{k+1} / mu_k``, if it is at least ``gap`` and the ``k``
       smallest eigenvalues hold at most ``1/gap`` of the trace; otherwise ``k = min(rx, ry)``.

    ``whiten=True`` is CCA: each side is whitened on its informative directions first (at most
    ``m - 1`` of them when centred), so the eigenvalues of ``G`` are ``m (1 - rho_i)`` for the
    canonical correlations ``rho_i`` and the ``k`` directions are the best-correlated ones; ``k``
    follows rules 1 and 3 (whitened spectra have no noise floor to find). Whitening gives noise
    directions as much weight as signal ones: with noisy data and many dimensions the null space is
    then mostly chance correlations.

    Fitted: ``n_components_`` (``k``), ``k_rule_`` (which rule chose it), ``noise_floor_`` (whether rule 2
    applied), ``eigenvalues_`` (the spectrum of ``G``, ascending),
    ``residuals_`` (``sqrt(mu_1..mu_k)``), ``proj_x_`` / ``proj_y_`` (the informative directions).
    """

    name = "nullspace"
    description = "Perfect-alignment null space (raw; CCA when whitened)"
    parameter_ranges = {"n_components": Range(low=1), "tol": Range(low=0, high=1, open_high=True),
                        "gap": Range(low=1)}
    min_anchors = 2

    def __init__(self, n_components: int | None = None, whiten: bool = False, center: bool = True,
                 tol: float = 1e-10, gap: float = 10.0):
        self.n_components = n_components
        self.whiten = whiten
        self.center = center
        self.tol = tol
        self.gap = gap

    def _fit(self, xa, ya, xu, yu):
        xa, ya = xa.astype(np.float64), ya.astype(np.float64)
        self.mean_x_ = xa.mean(axis=0) if self.center else np.zeros(xa.shape[1])
        self.mean_y_ = ya.mean(axis=0) if self.center else np.zeros(ya.shape[1])
        xc, yc = xa - self.mean_x_, ya - self.mean_y_
        self.noise_floor_ = False
        if self.whiten:
            # Centred anchors span at most m - 1 directions.
            cap = len(xa) - 1 if self.center else len(xa)
            self.proj_x_ = whitening(xc, self.tol, cap)
            self.proj_y_ = whitening(yc, self.tol, cap)
            eigvals, eigvecs = _spectrum(xc @ self.proj_x_, yc @ self.proj_y_)
        else:
            var_x, self.proj_x_ = principal_directions(xc, self.tol)
            var_y, self.proj_y_ = principal_directions(yc, self.tol)
            px, py = xc @ self.proj_x_, yc @ self.proj_y_
            eigvals, eigvecs = _spectrum(px, py)
            exact = eigvals[0] <= self.tol * eigvals[-1]
            floor = None if exact else noise_floor(var_x, var_y, self.gap, px.T @ py, len(xa))
            self.noise_floor_ = floor is not None
            if floor is not None:
                self.proj_x_, self.proj_y_ = self.proj_x_[:, :floor], self.proj_y_[:, :floor]
                eigvals, eigvecs = _spectrum(xc @ self.proj_x_, yc @ self.proj_y_)
        rx, ry = self.proj_x_.shape[1], self.proj_y_.shape[1]
        if self.n_components:
            k, self.k_rule_ = min(self.n_components, rx + ry), "given"
        else:
            k, self.k_rule_ = null_dimension(eigvals, min(rx, ry), self.tol, self.gap)
        w = eigvecs[:, :k].T
        self.n_components_ = k
        self.eigenvalues_ = eigvals
        self.w_x_, self.w_y_ = w[:, :rx], -w[:, rx:]
        self.residuals_ = np.sqrt(np.clip(eigvals[:k], 0, None))

    def _fit_report(self):
        """The rule that chose ``k`` (the space's ``dim``): ``exact``, zero eigenvalues (rule 1); ``gap``,
        the largest jump (rule 3); ``all``, no jump, ``min(rx, ry)``; ``given``, ``n_components``.
        ``noise_floor``: whether rule 2 cut both sides at a shared noise floor first. ``directions_x``,
        ``directions_y``: the informative directions each side kept (``rx``, ``ry``)."""
        return {"k_rule": self.k_rule_, "noise_floor": self.noise_floor_, "directions_x": self.proj_x_.shape[1],
                "directions_y": self.proj_y_.shape[1]}

    def _transform_x(self, x):
        return (x - self.mean_x_) @ self.proj_x_ @ self.w_x_.T

    def _transform_y(self, y):
        return (y - self.mean_y_) @ self.proj_y_ @ self.w_y_.T


def _spectrum(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending eigenpairs of ``G = M M^T`` for ``M = [x^T; y^T]`` ``(rx + ry, m)``."""
    stacked = np.concatenate([x, y], axis=1)  # M^T: (m, rx + ry)
    return np.linalg.eigh(stacked.T @ stacked)


def _drops(descending: np.ndarray, cuts: np.ndarray, gap: float) -> np.ndarray:
    """For each cut ``c`` (directions kept), ``values[c-1] / values[c]``, or 0 where the ``values[c:]``
    tail holds more than ``1/gap`` of the total."""
    values = np.clip(descending, 0, None)
    ratio = values[cuts - 1] / np.maximum(values[cuts], np.finfo(float).tiny * max(values[0], 1.0))
    tail = np.cumsum(values[::-1])[::-1][cuts]
    return np.where(tail * gap <= values.sum(), ratio, 0.0)


def noise_floor(var_x: np.ndarray, var_y: np.ndarray, gap: float, cross: np.ndarray, m: int) -> int | None:
    """The number of principal directions above a noise floor both sides share: the cut ``c`` where
    both spectra (descending) fall by the largest factor, if that is at least ``gap``, each floor
    holds at most ``1/gap`` of its side's variance, and no direction under a floor is correlated with
    any of the other side's beyond chance. ``None`` where there is no such floor. ``var_x``,
    ``var_y``: the directions' sums of squares over the ``m`` anchors; ``cross``: the sides'
    cross-products in their principal directions, ``(rx, ry)``.

    Noise does not co-vary with the other side. A direction that does carries shared signal however
    little variance it has (modality-specific variance can dwarf the shared signal), so a floor that
    would drop it is no noise floor. Chance: the correlation of two independent directions over
    ``m`` samples is about normal with variance ``1/m``, so all ``rx * ry`` pairs stay below
    ``sqrt(2 ln(gap rx ry) / m)`` but with probability about ``1/gap``."""
    cuts = np.arange(1, min(len(var_x), len(var_y)))
    if not cuts.size:
        return None
    drop = np.minimum(_drops(var_x, cuts, gap), _drops(var_y, cuts, gap))
    correlation = np.abs(cross) / np.sqrt(np.maximum(np.outer(var_x, var_y), np.finfo(float).tiny))
    chance = np.sqrt(2 * np.log(gap * correlation.size) / max(m, 1))
    co_varying_x = np.maximum.accumulate(correlation.max(axis=1)[::-1])[::-1][cuts] > chance
    co_varying_y = np.maximum.accumulate(correlation.max(axis=0)[::-1])[::-1][cuts] > chance
    drop = np.where(co_varying_x | co_varying_y, 0.0, drop)
    best = int(np.argmax(drop))
    return int(cuts[best]) if drop[best] >= gap else None


def null_dimension(eigvals: np.ndarray, most: int, tol: float, gap: float) -> tuple[int, str]:
    """``k`` from the ascending spectrum of ``G``, and the rule that chose it: the number of
    (numerically) zero eigenvalues if any (``"exact"``), else the position of the largest jump
    ``mu_{k+1} / mu_k >= gap`` below which at most ``1/gap`` of the trace lies (``"gap"``), else
    ``most`` (``"all"``). ``k`` is always in ``1..most``."""
    values = np.clip(eigvals, 0, None)
    zeros = int(np.sum(values <= tol * values[-1]))
    if zeros:
        return max(1, min(zeros, most)), "exact"
    cuts = np.arange(1, min(most, len(values) - 1) + 1)  # k
    if not cuts.size:
        return max(1, most), "all"
    drop = _drops(values[::-1], len(values) - cuts, gap)
    best = int(np.argmax(drop))
    return (int(cuts[best]), "gap") if drop[best] >= gap else (max(1, most), "all")
