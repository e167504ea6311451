"""Orthogonal Procrustes (Schönemann 1966), prepared as latentis does: centre, scale, common dimension."""

from __future__ import annotations

from typing import Literal

import numpy as np

from alignbench import Aligner
from alignbench.arrays import l2_normalize

from .preprocessing import pca_basis, rms_norm, stack_available


class ProcrustesAligner(Aligner):
    """``R = U V^T`` with ``U S V^T = svd(Xa^T Ya)``: the rotation taking x anchors closest to y anchors.

    Each side is optionally L2-normalized, centred and scaled to unit RMS norm with statistics of
    every item the aligner sees (anchors and unpaired: none of it needs pairs), then brought to a
    common dimension by PCA (``reduce="pca"``, ``dim`` components, default min(dx, dy)) or by
    zero-padding the smaller side (``reduce="pad"``). x maps to ``x' R``, y to ``y'``.
    """

    name = "procrustes"
    description = "Orthogonal Procrustes with PCA to a common dimension"
    min_anchors = 1
    uses_unpaired = True

    def __init__(
        self,
        dim: int | None = None,
        reduce: Literal["pca", "pad"] = "pca",
        normalize: bool = True,
        center: bool = True,
        scale: bool = True,
    ):
        self.dim = dim
        self.reduce = reduce
        self.normalize = normalize
        self.center = center
        self.scale = scale

    def _fit(self, xa, ya, xu, yu):
        dx, dy = xa.shape[1], ya.shape[1]
        if self.reduce == "pca":
            dim = min(self.dim or min(dx, dy), dx, dy)
        else:
            dim = max(dx, dy)
        self.mean_x_, self.scale_x_, self.basis_x_ = self._side(stack_available(xa, xu), dim)
        self.mean_y_, self.scale_y_, self.basis_y_ = self._side(stack_available(ya, yu), dim)
        cross = self._prepare(xa, self.mean_x_, self.scale_x_, self.basis_x_).T @ self._prepare(
            ya, self.mean_y_, self.scale_y_, self.basis_y_
        )
        u, _, vt = np.linalg.svd(cross)
        self.rotation_ = u @ vt

    def _side(self, items: np.ndarray, dim: int) -> tuple[np.ndarray, float, np.ndarray]:
        items = items.astype(np.float64)
        if self.normalize:
            items = l2_normalize(items)
        mean = items.mean(axis=0) if self.center else np.zeros(items.shape[1])
        centred = items - mean
        scale = rms_norm(centred) if self.scale else 1.0
        if self.reduce == "pca":
            basis = pca_basis(centred, dim)
        else:
            basis = np.eye(items.shape[1], dim)  # zero-padding to the larger dimension
        return mean, scale, basis

    def _prepare(self, z, mean, scale, basis):
        z = z.astype(np.float64)
        if self.normalize:
            z = l2_normalize(z)
        return (z - mean) / scale @ basis

    def _transform_x(self, x):
        return self._prepare(x, self.mean_x_, self.scale_x_, self.basis_x_) @ self.rotation_

    def _transform_y(self, y):
        return self._prepare(y, self.mean_y_, self.scale_y_, self.basis_y_)
