"""Functional-map aligner (seed 000), with correspondences turned into an ambient-space map."""

from __future__ import annotations

from typing import Literal

import numpy as np

from alignbench import Aligner, Range
from alignbench.arrays import l2_normalize
from alignbench_plugins.geometry.functional_maps import (
    fit_functional_map, nearest_rows, orthogonalize, point_map, zoomout,
)
from alignbench_plugins.geometry.approximate_knn import Backend
from alignbench_plugins.geometry.graphs import gaussian_weights, graph_eigenbasis, heat_kernel_signatures, knn, node_knn

from .lstsq import LeastSquaresAligner
from .procrustes import ProcrustesAligner


class FunctionalMapAligner(Aligner):
    """Functional maps between the kNN-graph Laplacian eigenbases of the two spaces.

    1. A cosine kNN graph (``n_neighbors``, Gaussian weights) on the distinct items each side sees
       (anchors and unpaired; identical rows are one node), restricted to its largest connected
       component; the first ``n_eigen`` non-trivial eigenpairs of its symmetric normalized
       Laplacian (the constant one carries no information, and the seed paper drops it too):
       ``(Phi, Lx)`` and ``(Psi, Ly)``.
    2. Descriptors known on both sides: centred cosine similarity of every item to each anchor
       (``descriptors="anchors"``), an indicator function at each anchor (``"delta"``, the seed
       paper's probes: ``A = Phi[anchors]^T``), heat-kernel signatures (``"hks"``, needs no anchors),
       or anchors and HKS (``"both"``). ``"auto"`` uses anchors when any anchor pair lies in both
       graphs and HKS otherwise (so do ``"anchors"`` and ``"delta"``, and ``fit_report`` says which
       were used).
    3. ``C = argmin ||C A - B||^2 + alpha ||C Lx - Ly C||^2 + ridge ||C||^2`` with ``A = Phi^T F``,
       ``B = Psi^T G``; optionally the nearest orthogonal ``C`` and ZoomOut refinement up to
       ``zoomout`` eigenpairs.
    4. Point correspondences from ``C`` (nearest rows of ``Psi C`` and ``Phi``; anchors pinned),
       then, as Latent Functional Maps do, a map fitted on them in the original spaces:
       ``ambient="orthogonal"`` (Procrustes) or ``"linear"`` (least squares), on the anchors and the
       cycle-consistent matches (``correspondences="mutual"``) or on every match (``"all"``). ``"spectral"`` instead
       compares items in spectral coordinates (the seed paper's choice), extending the eigenbasis to
       new items by the Nyström formula.

    ``knn``: how the kNN graphs are searched: ``exact`` (blocked products) or, for graphs on 100k+
    items, faiss's approximate ``faiss-hnsw`` / ``faiss-ivf`` (the faiss extra).

    Whether step 4's matches add anything is measured, not assumed: ``matches_`` holds every
    (Y row, X row) match fmap found beyond the anchors, ``kept_matches_`` those the ambient fit used,
    and the ``correspondence`` metric scores them against the true pairs. When few are kept or few
    are right, this aligner is Procrustes on the anchors; ``fmap-spectral`` is the seed paper's method.

    Fitted state: ``eigvals_x_``, ``eigvals_y_``, ``C_`` (at the final size), ``correspondence_``,
    ``matches_``, ``kept_matches_``, ``match_choices_`` (the X nodes each match was picked among).
    """

    name = "fmap"
    description = "Functional maps between kNN-graph Laplacian eigenbases"
    parameter_ranges = {"n_neighbors": Range(low=1), "n_eigen": Range(low=1), "alpha": Range(low=0),
                        "ridge": Range(low=0), "hks_scales": Range(low=1), "zoomout": Range(low=0), "seed": Range(low=0)}
    min_anchors = 0
    uses_unpaired = True

    def __init__(
        self,
        n_neighbors: int = 15,
        n_eigen: int = 50,
        alpha: float = 1e-2,
        descriptors: Literal["auto", "anchors", "delta", "hks", "both"] = "auto",
        hks_scales: int = 16,
        orthogonal: bool = False,
        zoomout: int = 0,
        ambient: Literal["orthogonal", "linear", "spectral"] = "orthogonal",
        correspondences: Literal["mutual", "all"] = "mutual",
        knn: Backend = "exact",
        seed: int = 0,
        ridge: float = 0.0,
    ):
        self.n_neighbors = n_neighbors
        self.n_eigen = n_eigen
        self.alpha = alpha
        self.ridge = ridge
        self.descriptors = descriptors
        self.hks_scales = hks_scales
        self.orthogonal = orthogonal
        self.zoomout = zoomout
        self.ambient = ambient
        self.correspondences = correspondences
        self.knn = knn
        self.seed = seed

    def _fit(self, xa, ya, xu, yu):
        m = len(xa)
        items_x = xa if xu is None else np.concatenate([xa, xu])
        items_y = ya if yu is None else np.concatenate([ya, yu])
        n_eigen = max(self.n_eigen, self.zoomout)
        self.nodes_x_, node_of_x, self.eigvals_full_x_, phi = graph_eigenbasis(
            items_x, self.n_neighbors, n_eigen, self.seed, self.knn)
        self.nodes_y_, node_of_y, self.eigvals_full_y_, psi = graph_eigenbasis(
            items_y, self.n_neighbors, n_eigen, self.seed, self.knn)
        k = min(self.n_eigen, phi.shape[1], psi.shape[1])
        # Anchors that survived on both sides, as nodes.
        kept = np.flatnonzero((node_of_x[:m] >= 0) & (node_of_y[:m] >= 0))
        anchor_x, anchor_y = node_of_x[kept], node_of_y[kept]
        self.graph_anchors_ = len(kept)
        self.graph_share_x_, self.graph_share_y_ = np.mean(node_of_x >= 0), np.mean(node_of_y >= 0)
        a, b = self._descriptors(items_x[self.nodes_x_], items_y[self.nodes_y_], anchor_x, anchor_y,
                                 phi, psi, k, self.eigvals_full_x_, self.eigvals_full_y_)
        c = fit_functional_map(a, b, self.eigvals_full_x_[:k], self.eigvals_full_y_[:k], self.alpha, self.ridge)
        if self.orthogonal:
            c = orthogonalize(c)
        if self.zoomout > k:
            c = zoomout(c, phi, psi, min(self.zoomout, phi.shape[1], psi.shape[1]),
                        step=max(1, (self.zoomout - k) // 10), fixed=(anchor_y, anchor_x))
        k = c.shape[0]
        self.C_ = c
        self.eigvals_x_, self.eigvals_y_ = self.eigvals_full_x_[:k], self.eigvals_full_y_[:k]
        t = point_map(c, phi, psi)
        t[anchor_y] = anchor_x
        self.correspondence_ = self.nodes_x_[t]  # for every Y node, the row of its X match
        # The matches fmap found on its own (Y nodes that are not anchors), as (Y row, X row) pairs.
        matched = np.setdiff1d(np.arange(len(t)), anchor_y)
        self.matches_ = np.stack([self.nodes_y_[matched], self.correspondence_[matched]], axis=1)
        self.match_choices_ = ("x", self.nodes_x_)  # each Y node picked an X node of the X graph
        if self.ambient == "spectral":
            self.kept_matches_ = np.zeros(len(matched), dtype=bool)
            self._keep_for_nystrom(items_x, items_y, phi[:, :k], psi[:, :k])
            return
        if self.correspondences == "mutual":
            # Keep a Y node's match only when that X node's nearest Y node is it (cycle-consistent):
            # wrong matches would otherwise drown the known pairs.
            back = nearest_rows(phi[:, :k], psi[:, :k] @ c)
            self.kept_matches_ = back[t[matched]] == matched
        else:
            self.kept_matches_ = np.ones(len(matched), dtype=bool)
        pairs = self.matches_[self.kept_matches_]
        self.n_correspondences_ = len(pairs)
        # Every anchor pair counts, also those outside the graphs' largest components.
        x_pairs = np.concatenate([xa, items_x[pairs[:, 1]]])
        y_pairs = np.concatenate([ya, items_y[pairs[:, 0]]])
        inner = ProcrustesAligner() if self.ambient == "orthogonal" else LeastSquaresAligner(alpha=1e-3)
        self.ambient_ = inner.fit(x_pairs, y_pairs, items_x, items_y)

    def _descriptors(self, nodes_x, nodes_y, anchor_x, anchor_y, phi, psi, k, lx, ly):
        """The descriptors' coefficients on the first ``k`` vectors of ``phi`` and ``psi`` (``(k, p)`` each)."""
        kinds = self.descriptors
        if kinds == "auto":
            kinds = "anchors" if len(anchor_x) else "hks"
        a, b, used = [], [], []
        if kinds in ("anchors", "both") and len(anchor_x):
            cx = l2_normalize(nodes_x - nodes_x.mean(axis=0))
            cy = l2_normalize(nodes_y - nodes_y.mean(axis=0))
            a.append(phi[:, :k].T @ (cx @ cx[anchor_x].T))
            b.append(psi[:, :k].T @ (cy @ cy[anchor_y].T))
            used.append("anchors")
        if kinds == "delta" and len(anchor_x):
            # An indicator at a node has the basis's row there as its coefficients: the product with
            # the (nodes x anchors) indicator matrix, without building it.
            a.append(phi[anchor_x, :k].T)
            b.append(psi[anchor_y, :k].T)
            used.append("delta")
        if kinds in ("hks", "both") or not a:  # "anchors" with no anchor in both graphs: HKS, reported
            a.append(phi[:, :k].T @ heat_kernel_signatures(lx, phi, self.hks_scales))
            b.append(psi[:, :k].T @ heat_kernel_signatures(ly, psi, self.hks_scales))
            used.append("hks")
        self.descriptors_ = "+".join(used)
        return np.concatenate(a, axis=1), np.concatenate(b, axis=1)

    def _fit_report(self):
        """What the functional map was fitted on and with: the share of each side's items in its graph's
        largest component (``graph_share_x/_y``), the anchor pairs whose two rows are in them
        (``graph_anchors``; pairs, though identical captions share one node), the
        descriptors used (``anchors``, ``hks`` or both; ``auto`` picks HKS when no anchor is in both
        graphs), the basis size ``basis``, the matches found beyond the anchors (``matches``) and, for
        a map fitted in the ambient space, how many of them it used (``matches_kept``): with none
        kept, the map is Procrustes (or least squares) on the anchors alone, and the report says so
        whichever metrics a sweep computes (the ``correspondence`` metric scores the matches)."""
        report = {"graph_share_x": float(self.graph_share_x_), "graph_share_y": float(self.graph_share_y_),
                  "graph_anchors": self.graph_anchors_, "descriptors": self.descriptors_, "basis": self.C_.shape[0],
                  "matches": len(self.matches_)}
        if self.ambient != "spectral":
            report["matches_kept"] = int(self.kept_matches_.sum())
        return report

    def _keep_for_nystrom(self, items_x, items_y, phi, psi):
        self.nystrom_x_ = _Nystrom(items_x, self.nodes_x_, phi, self.eigvals_x_, self.n_neighbors, self.knn, self.seed)
        self.nystrom_y_ = _Nystrom(items_y, self.nodes_y_, psi, self.eigvals_y_, self.n_neighbors, self.knn, self.seed)

    def _transform_x(self, x):
        if self.ambient == "spectral":
            return self.nystrom_x_(x)
        return self.ambient_.transform_x(x)

    def _transform_y(self, y):
        if self.ambient == "spectral":
            return self.nystrom_y_(y) @ self.C_  # row j of Psi C is the X embedding it corresponds to
        return self.ambient_.transform_y(y)


class _Nystrom:
    """Extends graph eigenvectors to new points: ``phi_k(x) = sum_i w(x, i) phi_k(i) / (sqrt(d_x d_i) mu_k)``
    with ``mu_k = 1 - lambda_k``, the eigenvalue of the normalized adjacency."""

    def __init__(self, items: np.ndarray, nodes: np.ndarray, eigvecs: np.ndarray, eigvals: np.ndarray,
                 n_neighbors: int, backend: Backend = "exact", seed: int = 0):
        self.nodes, self.eigvecs, self.n_neighbors = items[nodes], eigvecs, n_neighbors
        self.backend, self.seed = backend, seed
        # The nodes' own kNN graph: the search the eigenbasis was built on, restricted to its nodes.
        indices, sims = node_knn(items, nodes, n_neighbors, backend, seed)
        weights, self.sigma2 = gaussian_weights(sims)
        degrees = np.bincount(np.repeat(np.arange(len(nodes)), indices.shape[1]), weights.ravel(), len(nodes))
        # A node whose neighbours all sit many sigmas away has a degree that underflows (1e-90 on
        # Gaussian-mixture data), and a query landing next to it was divided by its square root
        # (values of 1e46). Floored at a thousandth of the typical degree.
        self.degrees = np.maximum(degrees, 1e-3 * float(np.median(degrees)))
        self.mu = np.maximum(1.0 - eigvals, 1e-3)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        indices, sims = knn(points, self.nodes, self.n_neighbors, backend=self.backend, seed=self.seed)
        weights, _ = gaussian_weights(sims, self.sigma2)
        d = np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
        w = weights / np.sqrt(d * self.degrees[indices])
        return np.einsum("qn,qnk->qk", w, self.eigvecs[indices]) / self.mu


class SpectralFunctionalMapAligner(FunctionalMapAligner):
    """The seed-000 paper's method, with its code's settings (``spectral_fmap_experiments.py``):
    indicator probes at the anchors (``descriptors="delta"``), a Laplacian commutativity weight of
    0.1 and a Tikhonov ridge of 1e-3 on ``C`` over 50 eigenpairs (``compute_fmap_supervised``), and
    items compared in spectral coordinates (``ambient="spectral"``) with no map fitted in the
    ambient space, so its rows show what the functional map itself does.

    Where it departs from that code, knowingly: ``C`` is the exact minimiser of the objective the
    paper states (the code's vectorized solve mixes row- and column-major order and solves another
    equation); no ZoomOut by default (the code refines ``C`` to 100 eigenpairs before retrieval;
    ``zoomout=100`` does, with the anchors pinned, 5 eigenpairs a step and no re-orthogonalization;
    by default fmap-spectral shares fmap's 50-pair eigenbases within a sweep); items are compared by
    cosine, as in every row of the benchmark (the code used negative squared distance, at image
    level). With no anchor in both graphs it falls back to heat-kernel signatures (``fit_report``
    says so) with these weights and 16 scales; the paper's anchor-free variant used 1.0, 0.01 and
    10 scales."""

    name = "fmap-spectral"
    description = "Functional maps, retrieval in spectral coordinates (the seed-000 paper's method)"

    def __init__(self, n_neighbors: int = 15, n_eigen: int = 50, alpha: float = 0.1,
                 descriptors: Literal["auto", "anchors", "delta", "hks", "both"] = "delta", hks_scales: int = 16,
                 orthogonal: bool = False, zoomout: int = 0, knn: Backend = "exact", seed: int = 0,
                 ridge: float = 1e-3):
        super().__init__(n_neighbors=n_neighbors, n_eigen=n_eigen, alpha=alpha, descriptors=descriptors,
                         hks_scales=hks_scales, orthogonal=orthogonal, zoomout=zoomout, ambient="spectral",
                         knn=knn, seed=seed, ridge=ridge)
