"""Seed 002's error metrics, made comparable across aligners."""

from __future__ import annotations

import numpy as np

from alignbench import AlignmentResult, Metric
from alignbench_plugins.aligners.preprocessing import least_squares


def mean_squared_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).sum(axis=1).mean())


def total_variance(z: np.ndarray) -> float:
    z = z.astype(np.float64)
    return float(((z - z.mean(axis=0)) ** 2).sum(axis=1).mean())


class AlignmentError(Metric):
    """Alignment error ``mean_i ||f(x_i) - g(y_i)||^2`` on the anchors and on held-out pairs (every
    test caption with its image), raw as in seed 002 and relative: divided by the mean total variance
    of the two aligned spaces, so that shrinking everything to a point does not score 0 (a collapse
    gives NaN; independent spaces give about 2).

    Where the dataset knows its latent ``z`` (synthetic data), ``reconstruction_error_x`` (and ``_y``)
    is ``1 - R^2`` of the best affine map from the aligned test items to ``z``: the alignment space
    is defined only up to an invertible map, so we ask whether ``z`` is recoverable from it at all.
    """

    name = "alignment-error"
    description = "Alignment error on anchors and held-out pairs"
    version = "1"
    higher_is_better = {
        "alignment_error_anchors": False, "alignment_error_heldout": False,
        "relative_alignment_error_anchors": False, "relative_alignment_error_heldout": False,
        "reconstruction_error_x": False, "reconstruction_error_y": False,
    }

    def __init__(self):
        pass

    def compute(self, result: AlignmentResult) -> dict[str, float]:
        test, anchors, aligner = result.test, result.anchors, result.aligner
        zx_pairs = result.zx[test.text_item]
        scale = (total_variance(result.zx) + total_variance(result.zy)) / 2
        heldout = mean_squared_distance(zx_pairs, result.zy)
        scores = {
            "alignment_error_heldout": heldout,
            "relative_alignment_error_heldout": heldout / scale if scale > 0 else float("nan"),
        }
        if len(anchors.items):
            on_anchors = mean_squared_distance(aligner.transform_x(anchors.x), aligner.transform_y(anchors.y))
            scores["alignment_error_anchors"] = on_anchors
            scores["relative_alignment_error_anchors"] = on_anchors / scale if scale > 0 else float("nan")
        if test.latent is not None:
            first_text = np.unique(test.text_item, return_index=True)[1]
            scores["reconstruction_error_x"] = unexplained_variance(result.zx, test.latent)
            scores["reconstruction_error_y"] = unexplained_variance(result.zy[first_text], test.latent)
        return scores


def unexplained_variance(z: np.ndarray, latent: np.ndarray) -> float:
    """``1 - R^2`` of the least-squares affine map ``z -> latent`` (a Cholesky solve of the float64 Gram
    where it is well conditioned, else the SVD least squares: :func:`least_squares`)."""
    design = np.concatenate([z.astype(np.float64), np.ones((len(z), 1))], axis=1)
    target = latent.astype(np.float64)
    coef = least_squares(design, target)
    residual = ((design @ coef - target) ** 2).sum()
    return float(residual / ((target - target.mean(axis=0)) ** 2).sum())
