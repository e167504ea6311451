"""Representation geometry: how similar the two spaces are, before and after alignment."""

from __future__ import annotations

import numpy as np
from scipy.cluster.vq import kmeans2

from alignbench import AlignmentResult, Metric, Range
from alignbench_plugins.geometry import diagnostics as d
from alignbench_plugins.geometry.approximate_knn import Backend


class Geometry(Metric):
    """Pairs are held-out items with their first text (one row per item on each side).

    On the raw embeddings (the same for every aligner: what the encoders agree on):
    ``mutual_knn`` (Huh et al. 2024, k neighbours) and ``linear_cka``. ``knn``: the neighbour search,
    ``exact`` or faiss's approximate ``faiss-hnsw`` / ``faiss-ivf`` for 100k+ held-out items. Exact
    search counts neighbours tied at the k-th place (duplicate captions) in expectation over random
    tie-breaking, so the scores do not depend on the order of the held-out pairs.
    On the aligned spaces: ``knn_jaccard_aligned`` (mean Jaccard of paired neighbour sets; 1 minus it
    is the kNN-graph mismatch), ``mmd_aligned`` (squared MMD, RBF with the median bandwidth, on up
    to ``max_items`` items), and, where the dataset has labels, ``silhouette_aligned`` (cosine, on
    both sides together) and ``nmi_aligned`` (k-means with one cluster per label, against the labels).
    """

    name = "geometry"
    description = "Mutual kNN, CKA, kNN mismatch, MMD, silhouette, NMI"
    parameter_ranges = {"k": Range(low=1), "max_items": Range(low=2), "seed": Range(low=0)}
    version = "3"  # 2: sample and clustering independent of the order of the held-out pairs; 3: kNN ties too
    higher_is_better = {"mutual_knn": True, "linear_cka": True, "knn_jaccard_aligned": True,
                        "mmd_aligned": False, "silhouette_aligned": True, "nmi_aligned": True}

    def __init__(self, k: int = 10, max_items: int = 2000, knn: Backend = "exact", seed: int = 0):
        self.k = k
        self.knn = knn
        self.max_items = max_items
        self.seed = seed

    def compute(self, result: AlignmentResult) -> dict[str, float]:
        test = result.test
        first_text = np.unique(test.text_item, return_index=True)[1]
        x, y = test.x, test.y[first_text]
        zx, zy = result.zx, result.zy[first_text]
        scores = {
            "mutual_knn": d.mutual_knn(x, y, self.k, self.knn),
            "linear_cka": d.linear_cka(x, y),
            "knn_jaccard_aligned": d.knn_jaccard(zx, zy, self.k, self.knn),
        }
        # The sample and k-means' seeding go by row position: put the rows in an order set by their
        # content, so that listing the held-out pairs in another order changes nothing.
        canonical = np.lexsort(np.asarray(zx, np.float64).T[::-1])
        rng = np.random.default_rng(self.seed)
        sample = canonical[np.sort(rng.permutation(len(zx))[: self.max_items])]
        scores["mmd_aligned"] = d.mmd_rbf(zx[sample], zy[sample])
        if test.labels is not None:
            joint = np.concatenate([zx[sample], zy[sample]])
            labels = np.concatenate([test.labels[sample], test.labels[sample]])
            scores["silhouette_aligned"] = d.silhouette(joint, labels)
            n_clusters = len(np.unique(labels))
            normalized = joint / np.maximum(np.linalg.norm(joint, axis=1, keepdims=True), 1e-12)
            _, clusters = kmeans2(normalized.astype(np.float64), n_clusters, minit="++", seed=self.seed)
            scores["nmi_aligned"] = d.normalized_mutual_information(clusters, labels)
        return scores
