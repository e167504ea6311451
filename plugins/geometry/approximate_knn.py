"""Approximate cosine kNN through faiss, for kNN graphs on 100k+ points (COCO's 590k train captions):
``faiss-hnsw`` (a navigable small-world graph, no training) and ``faiss-ivf`` (an inverted file over
k-means cells, trained on a seeded sample). Retrieval metrics never use these: they stay exact.

Both are deterministic for a given input and seed: the HNSW graph is built on one thread (faiss
inserts in parallel otherwise, and the graph then depends on thread timing); searches run on all
threads, each query on its own.
"""

from __future__ import annotations

import logging
from typing import Literal

import numpy as np

from alignbench.arrays import l2_normalize
from alignbench.errors import InvalidParameterError

log = logging.getLogger(__name__)

Backend = Literal["exact", "faiss-hnsw", "faiss-ivf"]
BACKENDS = ("exact", "faiss-hnsw", "faiss-ivf")


def require_faiss():
    try:
        import faiss
    except ImportError:
        raise InvalidParameterError("knn=faiss-hnsw and knn=faiss-ivf need faiss: pip install 'alignbench[faiss]' "
                                    "(or use knn=exact)") from None
    return faiss


def hnsw_index(points: np.ndarray, m: int = 32, ef_construction: int = 80):
    faiss = require_faiss()
    index = faiss.IndexHNSWFlat(points.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)  # a deterministic graph
    try:
        index.add(points)
    finally:
        faiss.omp_set_num_threads(threads)
    return index


def ivf_index(points: np.ndarray, seed: int, n_lists: int | None = None):
    faiss = require_faiss()
    n, dim = points.shape
    n_lists = n_lists or max(1, min(int(4 * np.sqrt(n)), n // 39))  # faiss wants >= 39 points a cell
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, n_lists, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    sample = points
    if n > 256 * n_lists:  # k-means on a seeded sample, as faiss itself would subsample
        sample = points[np.sort(np.random.default_rng(seed).choice(n, 256 * n_lists, replace=False))]
    index.train(sample)
    index.add(points)
    return index, n_lists


def approximate_knn(queries: np.ndarray, points: np.ndarray, k: int, *, exclude_self: bool = False,
                    backend: Backend = "faiss-hnsw", seed: int = 0, recall_effort: int = 4):
    """As :func:`graphs.knn` (``(indices (q, k) int64, similarities (q, k) float32)``, by decreasing
    cosine similarity), through a faiss index. ``recall_effort`` widens the search: HNSW's ``efSearch``
    is ``recall_effort * (k + 1)`` (at least 64); IVF probes ``recall_effort`` times ``sqrt`` of its
    cell count. Where the index returns fewer than ``k`` neighbours for a query (IVF with too few
    probes), the missing entries are filled from the exact scores of that query."""
    if backend not in BACKENDS[1:]:
        raise InvalidParameterError(f"unknown knn backend {backend!r}; use one of {', '.join(BACKENDS)}")
    qn, pn = l2_normalize(np.asarray(queries, np.float32)), l2_normalize(np.asarray(points, np.float32))
    qn, pn = np.ascontiguousarray(qn, np.float32), np.ascontiguousarray(pn, np.float32)
    k = min(k, len(pn) - (1 if exclude_self else 0))
    want = k + (1 if exclude_self else 0)
    if backend == "faiss-hnsw":
        index = hnsw_index(pn)
        index.hnsw.efSearch = max(64, recall_effort * want)
    else:
        index, n_lists = ivf_index(pn, seed)
        index.nprobe = min(n_lists, max(1, int(recall_effort * np.sqrt(n_lists))))
    sims, indices = index.search(qn, want)
    if exclude_self:
        indices, sims = drop_self(indices, sims, k)
    short = (indices < 0).any(axis=1)
    if short.any():
        log.warning("%s returned fewer than %d neighbours for %d of %d queries; those were filled from exact "
                    "scores (raise recall_effort to search more of the index)", backend, k, int(short.sum()), len(qn))
    for row in np.flatnonzero(short):  # rare: fill from the exact scores of that query
        scores = pn @ qn[row]
        if exclude_self:
            scores[row] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        indices[row], sims[row] = top, scores[top]
    return indices.astype(np.int64), sims.astype(np.float32)


def drop_self(indices: np.ndarray, sims: np.ndarray, k: int):
    """Each query's own row removed (or, where the index did not return it, the last neighbour)."""
    rows = np.arange(len(indices))[:, None]
    is_self = indices == rows
    keep = ~is_self
    keep[~is_self.any(axis=1), -1] = False
    return indices[keep].reshape(len(indices), k), sims[keep].reshape(len(indices), k)
