"""Spectral diagnostics (seed 000): how the two spaces' graph Laplacians relate."""

from __future__ import annotations

import numpy as np

from alignbench import AlignmentResult, Metric, Range
from alignbench_plugins.geometry import diagnostics as d
import scipy.sparse as sp

from alignbench.memo import memoize_by_content
from alignbench_plugins.geometry.graphs import graph_eigenbasis


@memoize_by_content(maxsize=4)  # once per held-out split, not once per cell
def ground_truth_map(x: np.ndarray, y: np.ndarray, text_item: np.ndarray, n_neighbors: int, n_eigen: int):
    """``C_gt = Psi^T Pi Phi`` on held-out data whose pairs are all known.

    Graphs on the distinct raw test items and texts (identical rows are one node), each restricted
    to its largest component, without the trivial eigenpair. ``Pi`` (text nodes x item nodes) sends
    a text node to its item, or spreads it evenly over the items of a caption that several share
    (rows sum to 1), so that repeating a caption does not change ``C``.
    Returns ``(C_gt, eigvals_x, eigvals_y)``.
    """
    nodes_x, node_of_item, lx, phi = graph_eigenbasis(x, n_neighbors, n_eigen)
    nodes_y, node_of_text, ly, psi = graph_eigenbasis(y, n_neighbors, n_eigen)
    item_node = node_of_item[text_item]
    valid = (node_of_text >= 0) & (item_node >= 0)
    pi = sp.csr_matrix((np.ones(int(valid.sum())), (node_of_text[valid], item_node[valid])),
                       shape=(len(nodes_y), len(nodes_x)))
    pi.data[:] = 1.0  # a text node names an item once, however many identical captions it has
    pi = sp.diags(1.0 / np.maximum(np.asarray(pi.sum(axis=1)).ravel(), 1.0)) @ pi
    k = min(phi.shape[1], psi.shape[1])
    c = psi[:, :k].T @ (pi @ phi[:, :k])
    return c, lx[:k], ly[:k]


def map_diagnostics(c: np.ndarray, lx: np.ndarray, ly: np.ndarray, prefix: str) -> dict[str, float]:
    return {
        f"{prefix}_stable_rank": d.stable_rank(c),
        f"{prefix}_diagonal_dominance": d.diagonal_dominance(c),
        f"{prefix}_orthogonality_error": d.orthogonality_error(c),
        f"{prefix}_orthogonality_error_scale_free": d.orthogonality_error_scale_free(c),
        f"{prefix}_commutativity_error": d.commutativity_error(c, lx, ly),
        f"{prefix}_commutativity_error_normalized": d.commutativity_error_normalized(c, lx, ly),
    }


class Spectral(Metric):
    """Seed 000's diagnostics, for the ground-truth map and, where the aligner has one, its map.

    - ``gt_*``: ``C_gt = Psi^T Pi Phi`` from kNN graphs (``n_neighbors``, Gaussian weights) on the raw
      held-out items and texts, first ``n_eigen`` eigenpairs: what the spaces themselves allow.
    - ``fmap_*``: the aligner's fitted ``C_`` with its ``eigvals_x_``/``eigvals_y_`` (fmap only): what
      the method found. Reading them side by side separates "the method failed" from "the spaces
      disagree".
    - ``spectral_distance``: normalized distance between the held-out spectra (``fmap_spectral_distance``
      for the aligner's own graphs).
    Diagonal dominance, orthogonality error ``||C^T C - I||_F / k`` (and scale-free), Laplacian
    commutativity ``||C Lx - Ly C||_F`` (and normalized by ``||C||_F max(lambda)``), and the stable
    rank of ``C``: a map of low rank sends most of one basis to nothing, and its orthogonality error
    then says little (the zero map's is ``1/sqrt(k)``). Fashion-MNIST's ``C_gt`` is such a map: its
    captions name ten classes, so ``Pi`` has ten distinct rows and ``C_gt`` rank 10 at most.
    """

    name = "spectral"
    description = "Functional-map spectral diagnostics"
    parameter_ranges = {"n_neighbors": Range(low=1), "n_eigen": Range(low=1)}
    version = "4"  # 2: graphs on distinct rows, no trivial eigenpair, Pi's rows sum to 1; 3: numerical ranks; 4: stable ranks
    higher_is_better = {
        **{f"{p}_diagonal_dominance": True for p in ("gt", "fmap")},
        **{f"{p}_stable_rank": True for p in ("gt", "fmap")},
        **{f"{p}_{e}": False for p in ("gt", "fmap") for e in (
            "orthogonality_error", "orthogonality_error_scale_free", "commutativity_error",
            "commutativity_error_normalized")},
        "spectral_distance": False, "fmap_spectral_distance": False,
    }

    def __init__(self, n_neighbors: int = 15, n_eigen: int = 50):
        self.n_neighbors = n_neighbors
        self.n_eigen = n_eigen

    def ground_truth(self, test) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(C_gt, eigvals_x, eigvals_y)`` for a held-out split (PairedData with embeddings)."""
        return ground_truth_map(test.x, test.y, test.text_item, self.n_neighbors, self.n_eigen)

    def compute(self, result: AlignmentResult) -> dict[str, float]:
        c_gt, lx, ly = self.ground_truth(result.test)
        scores = {"spectral_distance": d.spectral_distance(lx, ly), **map_diagnostics(c_gt, lx, ly, "gt")}
        aligner = result.aligner
        if all(hasattr(aligner, a) for a in ("C_", "eigvals_x_", "eigvals_y_")):
            scores.update(map_diagnostics(aligner.C_, aligner.eigvals_x_, aligner.eigvals_y_, "fmap"))
            scores["fmap_spectral_distance"] = d.spectral_distance(aligner.eigvals_x_, aligner.eigvals_y_)
        return scores
