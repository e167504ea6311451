"""Relative representations (Moschella et al., ICLR 2023): describe each item by its anchors."""

from __future__ import annotations

import numpy as np

from alignbench import Aligner
from alignbench.arrays import l2_normalize


class RelativeAligner(Aligner):
    """``rel(x) = [cos(x - m_x, x_a - m_x)]_a``: cosine similarity to each anchor in the item's own space.

    No training: the two relative spaces share coordinates because anchor ``a`` is the same pair on
    both sides. ``center`` subtracts the anchors' mean first (anisotropic encoders put every cosine
    near 1 otherwise); ``center=False`` is the original formulation.
    """

    name = "relative"
    description = "Relative representations, centred on the anchors' mean (center=false: the original)"
    min_anchors = 1

    def __init__(self, center: bool = True):
        self.center = center

    def _fit(self, xa, ya, xu, yu):
        self.mean_x_ = xa.mean(axis=0) if self.center and len(xa) > 1 else np.zeros(xa.shape[1], np.float32)
        self.mean_y_ = ya.mean(axis=0) if self.center and len(ya) > 1 else np.zeros(ya.shape[1], np.float32)
        self.anchors_x_ = l2_normalize(xa - self.mean_x_)
        self.anchors_y_ = l2_normalize(ya - self.mean_y_)

    def _transform_x(self, x):
        return l2_normalize(x - self.mean_x_) @ self.anchors_x_.T

    def _transform_y(self, y):
        return l2_normalize(y - self.mean_y_) @ self.anchors_y_.T
