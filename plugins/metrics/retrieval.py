"""Cross-modal retrieval, exact and blocked, with several texts per item.

Protocol of LAION CLIP_benchmark (``zeroshot_retrieval.py``): scores are between single captions
and images, never averaged captions.

- image -> text: an image hits at K if ANY of its captions ranks in the top K of all texts;
  averaged over images.
- text -> image: a caption hits at K if its image ranks in the top K of all images; averaged over
  captions.

Ranks are counted, not sorted: the rank of a relevant text is the number of non-relevant texts
scoring at least as high. Ties count against the relevant item, so that an aligner that collapses
everything onto one point scores 0, not 1. Two scores are tied when they differ by no more than
float32 rounding can make them (:func:`tie_tolerance`): duplicate items or captions (Fashion-MNIST's
10,000 captions are 50 strings) get scores that differ in the last bits depending on where they
sit in the matrix product and on the CPU's BLAS kernels, and an exact comparison would break those
ties by noise, differently on every machine. mAP for image -> text is
``AP(q) = 1/|R_q| sum_j j / pos_j`` over the query's relevant texts in score order; for
text -> image there is one relevant image and AP equals the reciprocal rank.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from alignbench import AlignmentResult, Metric
from alignbench.arrays import l2_normalize


# Rounding error of a float32 dot product of length k grows like sqrt(k) ulps (pairwise and
# blocked summation); this many of them separate "tied" from "different".
TIE_ULPS = 4.0


def tie_tolerance(zx: np.ndarray, zy: np.ndarray) -> float:
    """Largest difference between two scores that still counts as a tie: ``TIE_ULPS sqrt(k)`` float32
    epsilons of the largest possible score ``max|x| max|y|`` (for cosine scores, about ``1e-6 sqrt(k)``)."""
    if not len(zx) or not len(zy):
        return 0.0
    scale = float(np.linalg.norm(zx, axis=1).max() * np.linalg.norm(zy, axis=1).max())
    return TIE_ULPS * np.sqrt(zx.shape[1]) * float(np.finfo(np.float32).eps) * scale


def retrieval_ranks(zx: np.ndarray, zy: np.ndarray, text_item: np.ndarray, block_size: int = 256,
                    tolerance: float | None = None):
    """Non-relevant items scoring at least as high as each relevant one (ties within ``tolerance``,
    default :func:`tie_tolerance`, count against the relevant one).

    zx: ``(n_items, k)``; zy: ``(n_texts, k)``; text_item: ``(n_texts,)``.
    Returns ``(i2t, t2i)``: ``i2t[t]`` counts the texts not of item ``text_item[t]`` that item
    scores at least as high as text ``t``; ``t2i[t]`` counts the items other than ``text_item[t]``
    that score at least as high against text ``t``. Memory is ``O(block_size * n_texts)``.
    """
    n_items = zx.shape[0]
    if tolerance is None:
        tolerance = tie_tolerance(zx, zy)
    # Lowered by the tolerance once, so that ">= threshold" counts ties.
    relevant_score = np.einsum("ij,ij->i", zx[text_item], zy) - np.float32(tolerance)  # (n_texts,)
    i2t = np.zeros(len(text_item), dtype=np.int64)
    t2i = np.zeros(len(text_item), dtype=np.int64)
    # Texts grouped by item, as a padded (n_items, max_texts) table of text indices (-1 = none).
    order = np.argsort(text_item, kind="stable")
    counts = np.bincount(text_item, minlength=n_items)
    slot = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    table = np.full((n_items, counts.max()), -1, dtype=np.int64)
    table[text_item[order], slot] = order
    for start in range(0, n_items, block_size):
        stop = min(start + block_size, n_items)
        scores = zx[start:stop] @ zy.T  # (b, n_texts)
        rows = np.arange(stop - start)
        own = (text_item >= start) & (text_item < stop)
        own_rows, own_cols = text_item[own] - start, np.flatnonzero(own)
        beats = scores >= relevant_score[None, :]
        beats[own_rows, own_cols] = False  # an item never outranks itself
        t2i += beats.sum(axis=0)
        scores[own_rows, own_cols] = -np.inf  # only non-relevant texts compete in image -> text
        for j in range(table.shape[1]):
            texts = table[start:stop, j]
            present = texts >= 0
            if not present.any():
                continue
            threshold = relevant_score[np.where(present, texts, 0)]
            above = (scores[rows[present]] >= threshold[present, None]).sum(axis=1)
            i2t[texts[present]] = above
    return i2t, t2i


class Retrieval(Metric):
    """Recall@K both ways, mAP, MRR and median rank (1 = first); ``mean_R@1`` is the headline."""

    name = "retrieval"
    description = "Caption-level cross-modal retrieval"
    version = "3"  # 2: ties count against the relevant item; 3: ties within float32 rounding. paper_i2t is a parameter, so it is in every key
    higher_is_better = {"i2t_R@": True, "t2i_R@": True, "mean_R@1": True, "i2t_mAP": True, "t2i_mAP": True,
                        "i2t_MRR": True, "t2i_MRR": True, "i2t_median_rank": False, "t2i_median_rank": False}

    def __init__(self, ks: tuple[int, ...] = (1, 5, 10), similarity: Literal["cosine", "dot"] = "cosine",
                 block_size: int = 256, paper_i2t: bool = False):
        self.ks = ks
        self.similarity = similarity
        self.block_size = block_size
        self.paper_i2t = paper_i2t

    def compute(self, result: AlignmentResult) -> dict[str, float]:
        zx, zy = result.zx.astype(np.float32), result.zy.astype(np.float32)
        if self.similarity == "cosine":
            zx, zy = l2_normalize(zx), l2_normalize(zy)
        text_item = result.test.text_item
        i2t_above, t2i_above = retrieval_ranks(zx, zy, text_item, self.block_size)
        return retrieval_scores(i2t_above, t2i_above, text_item, zx.shape[0], self.ks, self.paper_i2t)


def retrieval_scores(i2t_above: np.ndarray, t2i_above: np.ndarray, text_item: np.ndarray, n_items: int,
                     ks: tuple[int, ...], paper_i2t: bool = False) -> dict[str, float]:
    """Recall@K, mAP, MRR, median rank from the counts of :func:`retrieval_ranks`.

    ``paper_i2t``: image->text Recall@K counts a hit within the top ``ceil(K / 5)``, as the seed-000
    paper's code does on its averaged captions (so its R@1 equals its R@5). Only for reproducing it.
    """
    # image -> text: per image, its texts sorted by how many non-relevant texts beat them.
    order = np.lexsort((i2t_above, text_item))
    items_sorted, above_sorted = text_item[order], i2t_above[order]
    first = np.searchsorted(items_sorted, np.arange(n_items))
    position_in_item = np.arange(len(order)) - first[items_sorted] + 1  # j = 1, 2, ...
    precision = position_in_item / (above_sorted + position_in_item)  # j / pos_j
    n_relevant = np.bincount(text_item, minlength=n_items)
    average_precision = np.bincount(items_sorted, weights=precision, minlength=n_items) / n_relevant
    best_rank = above_sorted[first] + 1  # 1-based rank of each image's best caption
    t2i_rank = t2i_above + 1
    scores: dict[str, float] = {}
    for k in ks:
        scores[f"i2t_R@{k}"] = float(np.mean(best_rank <= (-(-k // 5) if paper_i2t else k)))
        scores[f"t2i_R@{k}"] = float(np.mean(t2i_rank <= k))
    scores["mean_R@1"] = float((np.mean(best_rank <= 1) + np.mean(t2i_rank <= 1)) / 2)
    scores["i2t_mAP"] = float(np.mean(average_precision))
    scores["t2i_mAP"] = float(np.mean(1.0 / t2i_rank))
    scores["i2t_MRR"] = float(np.mean(1.0 / best_rank))
    scores["t2i_MRR"] = scores["t2i_mAP"]
    scores["i2t_median_rank"] = float(np.median(best_rank))
    scores["t2i_median_rank"] = float(np.median(t2i_rank))
    return scores


def label_ranks(zx: np.ndarray, zy: np.ndarray, item_labels: np.ndarray, text_labels: np.ndarray,
                block_size: int = 256, tolerance: float | None = None):
    """Ranks when any item or text of the same class counts as relevant.

    Returns ``(i2t, t2i)``: for each item, the number of other-class texts scoring at least as high
    as its best same-class text; for each text, the number of other-class items scoring at least as
    high as its best same-class item. Ties within ``tolerance`` (default :func:`tie_tolerance`)
    count against the relevant class.
    """
    n_items = zx.shape[0]
    if tolerance is None:
        tolerance = tie_tolerance(zx, zy)
    best_item = np.full(len(zy), -np.inf, dtype=np.float32)  # pass 1: each text's best same-class item
    for start in range(0, n_items, block_size):
        scores = zx[start:start + block_size] @ zy.T
        same = item_labels[start:start + block_size, None] == text_labels[None, :]
        best_item = np.maximum(best_item, np.where(same, scores, -np.inf).max(axis=0))
    i2t = np.zeros(n_items, dtype=np.int64)
    t2i = np.zeros(len(zy), dtype=np.int64)
    for start in range(0, n_items, block_size):  # pass 2: count the other-class competitors
        scores = zx[start:start + block_size] @ zy.T
        same = item_labels[start:start + block_size, None] == text_labels[None, :]
        best_text = np.where(same, scores, -np.inf).max(axis=1) - np.float32(tolerance)
        i2t[start:start + block_size] = ((scores >= best_text[:, None]) & ~same).sum(axis=1)
        t2i += ((scores >= best_item[None, :] - np.float32(tolerance)) & ~same).sum(axis=0)
    return i2t, t2i


class ClassRetrieval(Metric):
    """Retrieval where a hit is anything of the query's class (needs dataset labels).

    ``class_i2t_R@K``: an image hits if a caption of any same-class image is in its top K;
    ``class_t2i_R@K``: a caption hits if a same-class image is in its top K. For datasets whose
    captions describe the class rather than the instance (fashion-mnist), these are the numbers
    to read; ``class_mean_R@1`` is their headline.
    """

    name = "class-retrieval"
    description = "Class-level cross-modal retrieval"
    version = "3"  # 2: ties count against the relevant class; 3: ties within float32 rounding
    higher_is_better = {"class_i2t_R@": True, "class_t2i_R@": True, "class_mean_R@1": True}

    def __init__(self, ks: tuple[int, ...] = (1, 5, 10), block_size: int = 256):
        self.ks = ks
        self.block_size = block_size

    def compute(self, result: AlignmentResult) -> dict[str, float]:
        labels = result.test.labels
        if labels is None:
            return {}
        zx, zy = l2_normalize(result.zx.astype(np.float32)), l2_normalize(result.zy.astype(np.float32))
        i2t, t2i = label_ranks(zx, zy, labels, labels[result.test.text_item], self.block_size)
        scores = {}
        for k in self.ks:
            scores[f"class_i2t_R@{k}"] = float(np.mean(i2t < k))
            scores[f"class_t2i_R@{k}"] = float(np.mean(t2i < k))
        scores["class_mean_R@1"] = float((np.mean(i2t < 1) + np.mean(t2i < 1)) / 2)
        return scores
