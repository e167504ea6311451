"""Least-squares linear map: the floor every other aligner should beat."""

from __future__ import annotations

import numpy as np

from alignbench import Aligner, Range

from .preprocessing import least_squares


class LeastSquaresAligner(Aligner):
    """``W = argmin ||(Xa - mx) W - (Ya - my)||^2 + alpha ||W||^2``; x maps into y's space.

    With fewer anchors than dimensions and ``alpha = 0`` this is the minimum-norm solution (numpy's
    SVD least squares); with more, a Cholesky solve of the normal equations accumulated in float64.
    """

    name = "lstsq"
    description = "Least-squares linear map from x to y"
    parameter_ranges = {"alpha": Range(low=0)}
    min_anchors = 2

    def __init__(self, alpha: float = 0.0, center: bool = True):
        self.alpha = alpha
        self.center = center

    def _fit(self, xa, ya, xu, yu):
        xa, ya = xa.astype(np.float64), ya.astype(np.float64)
        self.mean_x_ = xa.mean(axis=0) if self.center else np.zeros(xa.shape[1])
        self.mean_y_ = ya.mean(axis=0) if self.center else np.zeros(ya.shape[1])
        xc, yc = xa - self.mean_x_, ya - self.mean_y_
        if self.alpha > 0:
            # Ridge normal equations, accumulated in float64.
            gram = xc.T @ xc + self.alpha * np.eye(xc.shape[1])
            self.coef_ = np.linalg.solve(gram, xc.T @ yc)
        else:
            # A Cholesky solve of the float64 Gram with more anchors than dimensions; numpy's SVD
            # least squares (the minimum-norm solution) with fewer, or when the Gram is ill-conditioned.
            self.coef_ = least_squares(xc, yc)

    def _transform_x(self, x):
        return (x - self.mean_x_) @ self.coef_

    def _transform_y(self, y):
        return y - self.mean_y_
