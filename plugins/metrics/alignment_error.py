"""Seed 002's error metrics, made comparable across aligners."""

from __future__ import annotations

import numpy as np

from alignbench import AlignmentResult, Metric
from alignbench_plugins.geometry.graphs import row_content_hashes


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
    is the cross-validated ``1 - R^2`` of the best affine map from the aligned test items to ``z``
    (:func:`unexplained_variance`): the alignment space is defined only up to an invertible map, so we
    ask whether ``z`` is recoverable from it at all, on items the map was not fitted on.
    """

    name = "alignment-error"
    description = "Alignment error on anchors and held-out pairs"
    # 2: the reconstruction error is cross-validated; fitted and scored on the same items it fell
    # with the aligned space's width whatever the alignment (relative's one dimension per anchor won).
    # 3: its fits leave out the directions of the aligned space under RESOLVABLE of the largest; fitting
    # them made the score follow rounding (fmap-spectral's changed from 0.06 to 0.61 with the thread count).
    version = "3"
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


RECONSTRUCTION_FOLDS = 5
# Directions of an aligned space (centred) whose singular value is under this fraction of the largest
# are left out of the reconstruction's fits. Aligned spaces are float32, out of solvers whose results
# move by up to ~5e-6 of their scale with the thread count (fmap-spectral's eigenvectors, measured);
# the synthetic spaces' unused directions sit at 1e-9 to 1e-11. A direction that small holds only
# that noise, and a least-squares fit gives it the largest coefficients of all.
RESOLVABLE = 1e-5


def unexplained_variance(z: np.ndarray, latent: np.ndarray, folds: int = RECONSTRUCTION_FOLDS) -> float:
    """Cross-validated ``1 - R^2`` of the least-squares affine map ``z -> latent``: the rows fall in
    ``folds`` folds; each fold is predicted by the map fitted on the others, and the squared residuals
    summed over all rows are divided by the latent's total variance about its mean. A row's fold
    follows from its latent's content (the rank of its hash among the distinct rows'), not its
    position, so the score does not depend on the order of the items, and identical items share a
    fold (none is predicted from its own copy).

    Fitted and scored on the same rows, ``1 - R^2`` falls to 0 as ``z`` widens, whatever it holds (any
    ``n - 1`` columns fit ``n`` rows exactly): pure noise then scores like a perfect alignment. Held
    out, a map that does not recover the latent scores about 1 (or more), and every column that holds
    nothing costs a little: 500 noise columns beside a noisy copy of the latent, fitted on 800 rows,
    take its 0.08 to 0.21 (a ridge penalty chosen by generalized cross-validation only got that to
    0.19: nothing tells useless directions from useful ones without a sparsity prior), so read a wide
    space's score beside its width. Each fit is :func:`resolvable_least_squares`: the minimum-norm
    solution on the directions of ``z`` above ``RESOLVABLE`` of the largest. NaN for fewer than two
    rows or a constant latent."""
    n = len(z)
    target = latent.astype(np.float64).reshape(n, -1)  # a 1-D latent is one column
    total = ((target - target.mean(axis=0)) ** 2).sum()
    if n < 2 or total == 0:
        return float("nan")
    z = z.astype(np.float64)
    # A non-constant latent has two distinct rows at least, so two folds at least.
    _, rank = np.unique(row_content_hashes(target), return_inverse=True)
    fold = rank.ravel() % min(folds, rank.max() + 1)
    residual = 0.0
    for held in np.unique(fold):
        fitted = fold != held
        z_mean, target_mean = z[fitted].mean(axis=0), target[fitted].mean(axis=0)
        coef = resolvable_least_squares(z[fitted] - z_mean, target[fitted] - target_mean)
        residual += (((z[~fitted] - z_mean) @ coef + target_mean - target[~fitted]) ** 2).sum()
    return float(residual / total)


def resolvable_least_squares(a: np.ndarray, b: np.ndarray, cutoff: float = RESOLVABLE) -> np.ndarray:
    """The minimum-norm ``argmin_w ||a w - b||^2`` on the directions of ``a`` whose singular value is
    above ``cutoff`` of the largest (a truncated SVD solve), ``(d, k)`` in float64. Computed from the
    eigenvectors of the Gram ``a^T a`` (d x d, fast for n >> d): its eigenvalues resolve singular
    values down to ~1e-8 of the largest, well under any cutoff of 1e-6 or more."""
    gram = a.T @ a
    values, vectors = np.linalg.eigh(gram)
    if values[-1] <= 0:
        return np.zeros((a.shape[1], b.shape[1]))
    keep = values > (cutoff ** 2) * values[-1]
    vectors = vectors[:, keep]
    return vectors @ ((vectors.T @ (a.T @ b)) / values[keep][:, None])
