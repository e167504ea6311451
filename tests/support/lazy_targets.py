"""Targets that tests register as lazy "module:Class" strings: one valid aligner, several invalid ones."""

import numpy as np

import alignbench


class LazyAligner(alignbench.Aligner):
    """A valid aligner (centred identity), imported only when a test loads it."""

    name = "lazy"

    def __init__(self):
        pass

    def _fit(self, xa, ya, xu, yu):
        self.mx_, self.my_ = xa.mean(0), ya.mean(0)

    def _transform_x(self, x):
        return x - self.mx_

    def _transform_y(self, y):
        return y - self.my_


class HalfAligner(alignbench.Aligner):
    """Forgets _transform_y: abstract, cannot be instantiated."""

    name = "half"

    def _fit(self, xa, ya, xu, yu):
        pass

    def _transform_x(self, x):
        return x


class NotAnAligner:
    """Looks like an aligner but does not subclass alignbench.Aligner."""

    name = "not-an-aligner"

    def fit(self, xa, ya):
        return self

    def transform_x(self, x):
        return np.asarray(x)


class Misnamed(LazyAligner):
    """A valid aligner whose name is not the one it is registered under."""

    name = "something-else"
