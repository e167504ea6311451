import numpy as np

import alignbench


class RidgeAligner(alignbench.Aligner):
    """Ridge regression from x to y: W = (X^T X + alpha I)^-1 X^T Y on centred anchors."""

    name = "example-ridge"
    min_anchors = 2
    parameter_ranges = {"alpha": alignbench.Range(low=0)}  # refused when a sweep is planned, in one line

    def __init__(self, alpha: float = 1.0):
        self.alpha = alpha

    def _fit(self, xa, ya, xu, yu):
        self.mx_, self.my_ = xa.mean(0), ya.mean(0)
        xc, yc = xa - self.mx_, ya - self.my_
        self.w_ = np.linalg.solve(xc.T @ xc + self.alpha * np.eye(xc.shape[1]), xc.T @ yc)

    def _transform_x(self, x):
        return (x - self.mx_) @ self.w_

    def _transform_y(self, y):
        return y - self.my_


@alignbench.hookimpl
def alignbench_register_aligners(register):
    register("example-ridge", RidgeAligner, description="Ridge regression (third-party example)")
