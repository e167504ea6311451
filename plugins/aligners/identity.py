"""No alignment at all: the reference row for encoders whose towers were trained into one space."""

from __future__ import annotations

from alignbench import Aligner
from alignbench.errors import InvalidInputError


class IdentityAligner(Aligner):
    """``f(x) = x``, ``g(y) = y``. Meaningful only for jointly trained towers (CLIP's image and text
    encoders); with two independent encoders it measures the raw cosine baseline (about chance)."""

    name = "identity"
    description = "No alignment (jointly trained encoders)"
    min_anchors = 0
    expected_failures = {"check_aligns_a_rotation": "identity learns nothing, so a rotated copy stays rotated"}

    def __init__(self):
        pass

    def _fit(self, xa, ya, xu, yu):
        if xa.shape[1] != ya.shape[1]:
            raise InvalidInputError(
                f"identity needs both sides in one space, but x has {xa.shape[1]} dims and y {ya.shape[1]}; "
                f"use it with jointly trained encoders such as clip-image + clip-text.")

    def _transform_x(self, x):
        return x

    def _transform_y(self, y):
        return y
