"""Orthogonal Procrustes (Schönemann 1966), prepared as latentis does: centre, scale, common dimension."""

from __future__ import annotations

from typing import Literal

import numpy as np

from alignbench import Aligner, Range

from .preprocessing import common_dimension, fit_side, rotation_from_cross, stack_available


class ProcrustesAligner(Aligner):
    """``R = U V^T`` with ``U S V^T = svd(Xa^T Ya)``: the rotation taking x anchors closest to y anchors.

    Each side is optionally L2-normalized, centred and scaled to unit RMS norm with statistics of
    every item the aligner sees (anchors and unpaired: none of it needs pairs), then brought to a
    common dimension by PCA (``reduce="pca"``, ``dim`` components, default min(dx, dy)) or by
    zero-padding the smaller side (``reduce="pad"``). x maps to ``x' R``, y to ``y'``.
    """

    name = "procrustes"
    description = "Orthogonal Procrustes with PCA to a common dimension"
    parameter_ranges = {"dim": Range(low=1)}
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
        dim = common_dimension(xa.shape[1], ya.shape[1], self.dim, self.reduce)
        options = dict(reduce=self.reduce, normalize=self.normalize, center=self.center, scale=self.scale)
        self.side_x_ = fit_side(stack_available(xa, xu), dim, **options)
        self.side_y_ = fit_side(stack_available(ya, yu), dim, **options)
        # orthogonal_map(side_x(xa), side_y(ya)) without projecting the anchors: the cross-covariance
        # of the prepared anchors (d x d, float64), then both bases.
        cross = self.side_x_.prepare(xa).T @ self.side_y_.prepare(ya)
        self.rotation_ = rotation_from_cross(self.side_x_.basis.T @ cross @ self.side_y_.basis)

    def _fit_report(self):
        """``map_rank``: the numerical rank of the anchors' cross-covariance (singular values above
        ``RANK_TOL`` of the largest), the directions the map keeps (it sends the rest of x to 0, see
        ``orthogonal_map``). Below ``dim``, every item lands in a ``map_rank``-dimensional subspace of the
        texts' space. For ``U_r V_r^T``, ``||R||_F^2 = r``."""
        return {"map_rank": int(round(float(np.sum(np.square(self.rotation_, dtype=np.float64)))))}

    def _transform_x(self, x):
        return self.side_x_(x) @ self.rotation_

    def _transform_y(self, y):
        return self.side_y_(y)
