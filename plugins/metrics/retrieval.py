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

from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Literal

import numpy as np

from alignbench import AlignmentResult, Metric, Range
from alignbench.arrays import l2_normalize, tie_tolerance
from alignbench.threads import blas_threads, single_threaded
from alignbench_plugins.metrics.consistency import at_least, mean_problems, median_problems, recall_order_problems


@dataclass(frozen=True)
class SimilarityRanks:
    """What one pass over the similarity matrix counts (see :func:`similarity_ranks`).

    i2t, t2i: ``(n_texts,)`` instance counts, as :func:`retrieval_ranks` returns them.
    class_i2t: ``(n_items,)``, class_t2i: ``(n_texts,)``, as :func:`label_ranks` returns them (None
    without labels).
    """

    i2t: np.ndarray
    t2i: np.ndarray
    class_i2t: np.ndarray | None = None
    class_t2i: np.ndarray | None = None


# Columns of the tiles the product is counted in: a (block_size, width) float32 tile of TILE_BYTES.
TILE_BYTES = 1 << 22
# Where at most this fraction of a tile's scores clears a threshold, the scores that clear it are
# gathered and compared one by one; above it, whole-tile comparisons are cheaper.
SPARSE_FRACTION = 1 / 32


def similarity_ranks(zx: np.ndarray, zy: np.ndarray, text_item: np.ndarray, item_labels: np.ndarray | None = None,
                     block_size: int = 256, tolerance: float | None = None,
                     text_labels: np.ndarray | None = None, workers: int | None = None) -> SimilarityRanks:
    """Instance and (with ``item_labels``) class ranks from one blocked pass over ``zx @ zy.T``.

    zx: ``(n_items, k)`` float32; zy: ``(n_texts, k)`` float32; text_item: ``(n_texts,)``;
    item_labels: ``(n_items,)`` or None; text_labels: ``(n_texts,)``, default the labels of the texts'
    items. Ties within ``tolerance`` (default :func:`tie_tolerance`) count against the relevant item
    or class, exactly as in :func:`retrieval_ranks` and :func:`label_ranks`.

    The product is computed in tiles of ``block_size`` items by ``TILE_BYTES`` worth of texts, each
    counted as soon as it is computed, while it is in cache. Each item's thresholds (one per text,
    and its class's) are taken in increasing order: while many scores clear one, they are counted by
    a whole-tile comparison; once few do, those few are gathered and compared against every higher
    threshold. Texts' thresholds likewise. Nothing is copied per threshold. Class ranks need each
    text's best same-class item before counting: the same-class part of the product (``1 / n_classes``
    of it for balanced classes) is computed first for that. Memory is ``O(workers * TILE_BYTES)`` for
    the pass and ``O(workers * block_size * n_texts)`` at most for the same-class part.

    ``workers`` threads (default: as many as BLAS has) each compute and count every ``workers``-th
    row block (and share the same-class part), with BLAS on one thread: the counting is numpy's, on
    one core, and this way it runs on all of them, like the product. A score's last bits depend on
    the product it comes from (its shape, BLAS's threads, the CPU's kernels), so a score within
    float32 rounding of a threshold may count otherwise in another configuration; duplicates' ties
    are kept by the tie tolerance in every one.
    """
    n_items, n_texts = zx.shape[0], zy.shape[0]
    text_item = np.asarray(text_item, dtype=np.int64)
    if not n_texts:  # nothing to rank, and nothing for an item's texts to lose to
        none = np.zeros(0, dtype=np.int64)
        return SimilarityRanks(none, none, *(() if item_labels is None else (np.zeros(n_items, dtype=np.int64), none)))
    if tolerance is None:
        tolerance = tie_tolerance(zx, zy)
    block_size = max(int(block_size), 1)
    width = max(TILE_BYTES // (4 * block_size), 256)
    starts = list(range(0, n_items, block_size))
    workers = max(1, min(blas_threads() if workers is None else int(workers), len(starts)))

    def count_blocks(share: list[int]) -> _ColumnCounts:
        """The row blocks starting at ``share``, tile by tile: their rows' counts in ``counter``, their
        columns' returned. Each tile is counted as soon as it is computed, while it is in cache."""
        columns = counter.columns()
        tile = np.empty((min(block_size, n_items), min(width, n_texts)), dtype=np.float32)
        mask = np.empty(tile.size, dtype=bool)
        for r0 in share:
            r1 = min(r0 + block_size, n_items)
            for c0 in range(0, n_texts, width):
                c1 = min(c0 + width, n_texts)
                scores = np.matmul(zx[r0:r1], zy[c0:c1].T, out=tile[:r1 - r0, :c1 - c0])
                counter.count(scores, r0, c0, mask, columns)
        return columns

    # With workers, every product of the pass is on one BLAS thread, the thresholds' too: the ranks
    # are then those of one worker with BLAS on one thread, to the last bit.
    threaded = workers > 1
    with single_threaded() if threaded else nullcontext(), ThreadPoolExecutor(workers) if threaded else nullcontext() as pool:
        run = (lambda function, *jobs: pool.map(_in_one_blas_thread(function), *jobs)) if threaded else map
        counter = _TileCounter(zx, zy, text_item, np.float32(tolerance), item_labels, text_labels, block_size, run)
        return counter.result(list(run(count_blocks, [starts[i::workers] for i in range(workers)])))


def _in_one_blas_thread(function):
    """``function`` run in the one-thread BLAS scope of the thread that runs it: BLAS threaded by
    OpenMP (faiss's OpenBLAS) takes a limit per thread, so the caller's scope does not reach the
    workers' products."""

    def call(*args):
        with single_threaded():
            return function(*args)

    return call


@dataclass
class _ColumnCounts:
    """One worker's text -> image counts: every row block adds to the same texts, so each worker
    keeps its own and they are summed at the end."""

    t2i: np.ndarray
    class_t2i: np.ndarray | None


class _TileCounter:
    """The thresholds and counts of :func:`similarity_ranks`; ``count`` counts one tile."""

    def __init__(self, zx, zy, text_item, tol, item_labels, text_labels, block_size, run=map):
        n_items, n_texts = zx.shape[0], zy.shape[0]
        self.text_item = text_item
        # Lowered by the tolerance once, so that ">= threshold" counts ties.
        self.relevant = np.einsum("ij,ij->i", zx[text_item], zy) - tol  # (n_texts,)
        # Each item's texts as a padded (n_items, max_texts) table, in increasing order of threshold.
        order = np.lexsort((self.relevant, text_item))
        counts = np.bincount(text_item, minlength=n_items)
        slot = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
        self.table = np.full((n_items, max(int(counts.max(initial=0)), 1)), -1, dtype=np.int64)
        self.table[text_item[order], slot] = order
        self.item_thresholds = np.where(self.table >= 0, self.relevant[self.table], np.inf).astype(np.float32)
        self.i2t_sorted = np.zeros(self.table.shape, dtype=np.int64)
        self.n_texts = n_texts
        self.with_classes = item_labels is not None
        if self.with_classes:
            # Labels as codes 0..n_classes-1; a text whose label no item has gets -1.
            item_labels = np.asarray(item_labels)
            text_labels = item_labels[text_item] if text_labels is None else np.asarray(text_labels)
            codes = np.unique(item_labels)
            self.item_codes = np.searchsorted(codes, item_labels)
            self.text_codes = np.searchsorted(codes, text_labels)
            self.text_codes[codes[np.minimum(self.text_codes, len(codes) - 1)] != text_labels] = -1
            best_text, best_item = _same_class_best(zx, zy, self.item_codes, self.text_codes, block_size, run)
            self.text_class_threshold, self.item_class_threshold = best_text - tol, best_item - tol
            self.class_i2t = np.zeros(n_items, dtype=np.int64)
        else:
            self.text_class_threshold = np.full(n_items, np.inf, dtype=np.float32)
            self.item_class_threshold = np.full(n_texts, np.inf, dtype=np.float32)
        # The lowest threshold a score must clear to count anywhere in a row, per item and level.
        self.row_probe = np.minimum(self.item_thresholds, self.text_class_threshold[:, None])

    def columns(self) -> _ColumnCounts:
        """Zeroed text -> image counts for one worker."""
        zeros = np.zeros(self.n_texts, dtype=np.int64)
        return _ColumnCounts(zeros, zeros.copy() if self.with_classes else None)

    def result(self, columns: list[_ColumnCounts]) -> SimilarityRanks:
        """The ranks, once every row block is counted; ``columns``: every worker's text -> image counts."""
        i2t = np.zeros(self.n_texts, dtype=np.int64)
        i2t[self.table[self.table >= 0]] = self.i2t_sorted[self.table >= 0]
        t2i = np.sum([c.t2i for c in columns], axis=0)
        if not self.with_classes:
            return SimilarityRanks(i2t, t2i)
        return SimilarityRanks(i2t, t2i, self.class_i2t, np.sum([c.class_t2i for c in columns], axis=0))

    def count(self, scores: np.ndarray, r0: int, c0: int, mask_buffer: np.ndarray, columns: _ColumnCounts) -> None:
        """Count the tile ``scores`` of items ``r0..`` and texts ``c0..``: its rows' image -> text counts
        here (no other worker has those rows), its columns' into ``columns``."""
        r1, c1 = r0 + scores.shape[0], c0 + scores.shape[1]
        rows, cols = slice(r0, r1), slice(c0, c1)
        above = mask_buffer[:scores.size].reshape(scores.shape)
        own_cols = c0 + np.flatnonzero((self.text_item[cols] >= r0) & (self.text_item[cols] < r1))
        # An item never competes with its own texts, in any of the four counts.
        scores[self.text_item[own_cols] - r0, own_cols - c0] = -np.inf
        self._count_columns(scores, above, rows, cols, columns)
        self._count_rows(scores, above, rows, cols)

    def _count_columns(self, scores, above, rows, cols, columns):
        """text -> image: the items scoring at least each text's threshold, then its class's. The
        instance counts are always a whole-tile comparison: gathering the scores above them cost more
        (measured: 3x a comparison at 3% of a tile). The class thresholds are higher (a text's best
        same-class item includes its own), so few scores clear them, and those are gathered."""
        t2i, class_t2i = columns.t2i, columns.class_t2i
        np.greater_equal(scores, self.relevant[None, cols], out=above)
        t2i[cols] += _count(above, axis=0)
        if not self.with_classes:
            return
        np.greater_equal(scores, self.item_class_threshold[None, cols], out=above)
        if _sparse(above):
            r, c, _ = _gather(scores, above)
            counted = self.item_codes[rows.start + r] != self.text_codes[cols.start + c]
            class_t2i[cols] += np.bincount(c[counted], minlength=cols.stop - cols.start)
        else:
            above &= self.item_codes[rows, None] != self.text_codes[None, cols]
            class_t2i[cols] += _count(above, axis=0)

    def _count_rows(self, scores, above, rows, cols):
        """image -> text: the texts scoring at least each of an item's thresholds, lowest first."""
        n_rows, levels = scores.shape[0], self.table.shape[1]
        i2t_sorted, class_i2t = self.i2t_sorted[rows], self.class_i2t[rows] if self.with_classes else None
        class_done = not self.with_classes
        for level in range(levels):
            probe = self.row_probe[rows, level]
            if np.isposinf(probe).all():  # no thresholds left (a class without texts gives -inf: all count)
                break
            np.greater_equal(scores, probe[:, None], out=above)
            if _sparse(above):
                r, c, v = _gather(scores, above)
                hit, hit_level = np.nonzero(v[:, None] >= self.item_thresholds[rows.start + r, level:])
                i2t_sorted[:, level:] += np.bincount(r[hit] * (levels - level) + hit_level,
                                                     minlength=n_rows * (levels - level)).reshape(n_rows, -1)
                if self.with_classes:
                    item, text = rows.start + r, cols.start + c
                    counted = (v >= self.text_class_threshold[item]) & (self.text_codes[text] != self.item_codes[item])
                    class_i2t += np.bincount(r[counted], minlength=n_rows)
                    class_done = True
                break
            if not np.array_equal(probe, self.item_thresholds[rows, level]):
                np.greater_equal(scores, self.item_thresholds[rows, level, None], out=above)
            i2t_sorted[:, level] += _count(above, axis=1)
        if class_done:
            return
        np.greater_equal(scores, self.text_class_threshold[rows, None], out=above)
        if _sparse(above):
            r, c, _ = _gather(scores, above)
            class_i2t += np.bincount(r[self.text_codes[cols.start + c] != self.item_codes[rows.start + r]],
                                     minlength=n_rows)
        else:
            above &= self.item_codes[rows, None] != self.text_codes[None, cols]
            class_i2t += _count(above, axis=1)


def _sparse(mask: np.ndarray) -> bool:
    return np.count_nonzero(mask) <= SPARSE_FRACTION * mask.size


def _gather(scores: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and score of the set entries of ``mask`` (C-contiguous, shaped like ``scores``)."""
    r, c = np.divmod(np.flatnonzero(mask), mask.shape[1])
    return r, c, scores[r, c]


def _count(mask: np.ndarray, axis: int) -> np.ndarray:
    """``mask.sum(axis)`` as int64, summing bytes (numpy's bool sum converts every element)."""
    small = mask.shape[axis] <= np.iinfo(np.uint16).max
    return np.add.reduce(mask.view(np.uint8), axis=axis, dtype=np.uint16 if small else np.int64).astype(np.int64)


def _same_class_best(zx: np.ndarray, zy: np.ndarray, item_labels: np.ndarray, text_labels: np.ndarray,
                     block_size: int, run=map) -> tuple[np.ndarray, np.ndarray]:
    """Each item's best same-class text score ``(n_items,)`` and each text's best same-class item
    score ``(n_texts,)``, from the same-class blocks of the product only (-inf where there is none).
    ``run``: the ``map`` the blocks are computed with (a thread pool's, in :func:`similarity_ranks`)."""
    best_text = np.full(len(zx), -np.inf, dtype=np.float32)
    best_item = np.full(len(zy), -np.inf, dtype=np.float32)
    classes = [(np.flatnonzero(item_labels == label), np.flatnonzero(text_labels == label))
               for label in np.unique(item_labels)]
    classes = [(items, texts) for items, texts in classes if len(texts)]

    def best(items: np.ndarray, texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        class_texts = zy[texts].T
        row_best, text_best = np.empty(len(items), dtype=np.float32), np.full(len(texts), -np.inf, dtype=np.float32)
        for start in range(0, len(items), block_size):
            scores = zx[items[start:start + block_size]] @ class_texts
            row_best[start:start + block_size] = scores.max(axis=1)
            np.maximum(text_best, scores.max(axis=0), out=text_best)
        return row_best, text_best

    for (items, texts), (row_best, text_best) in zip(classes, run(best, *zip(*classes)) if classes else ()):
        best_text[items], best_item[texts] = row_best, text_best
    return best_text, best_item


def retrieval_ranks(zx: np.ndarray, zy: np.ndarray, text_item: np.ndarray, block_size: int = 256,
                    tolerance: float | None = None):
    """Non-relevant items scoring at least as high as each relevant one (ties within ``tolerance``,
    default :func:`tie_tolerance`, count against the relevant one).

    zx: ``(n_items, k)``; zy: ``(n_texts, k)``; text_item: ``(n_texts,)``.
    Returns ``(i2t, t2i)``: ``i2t[t]`` counts the texts not of item ``text_item[t]`` that item
    scores at least as high as text ``t``; ``t2i[t]`` counts the items other than ``text_item[t]``
    that score at least as high against text ``t``. See :func:`similarity_ranks` for the pass.
    """
    ranks = similarity_ranks(zx, zy, text_item, None, block_size, tolerance)
    return ranks.i2t, ranks.t2i


def shared_ranks(result: AlignmentResult, similarity: Literal["cosine", "dot"] = "cosine",
                 block_size: int = 256) -> SimilarityRanks:
    """The ranks of ``result``'s aligned test split, computed once per result for every metric that
    asks with the same similarity and block size (retrieval and class retrieval share one pass).
    Class ranks are included where the split has labels and the similarity is cosine."""

    def compute() -> SimilarityRanks:
        zx, zy = np.asarray(result.zx, dtype=np.float32), np.asarray(result.zy, dtype=np.float32)
        if similarity == "cosine":
            zx, zy = l2_normalize(zx), l2_normalize(zy)
        labels = result.test.labels if similarity == "cosine" else None
        return similarity_ranks(zx, zy, result.test.text_item, labels, block_size)

    return result.shared(("retrieval-ranks", similarity, int(block_size)), compute)


class Retrieval(Metric):
    """Recall@K both ways, mAP, MRR and median rank (1 = first); ``mean_R@1`` is the headline."""

    name = "retrieval"
    description = "Caption-level cross-modal retrieval"
    parameter_ranges = {"ks": Range(low=1), "block_size": Range(low=1)}
    version = "3"  # 2: ties count against the relevant item; 3: ties within float32 rounding. paper_i2t is a parameter, so it is in every key
    higher_is_better = {"i2t_R@": True, "t2i_R@": True, "mean_R@1": True, "i2t_mAP": True, "t2i_mAP": True,
                        "i2t_MRR": True, "t2i_MRR": True, "i2t_median_rank": False, "t2i_median_rank": False}

    def __init__(self, ks: tuple[int, ...] = (1, 5, 10), similarity: Literal["cosine", "dot"] = "cosine",
                 block_size: int = 256, paper_i2t: bool = False):
        self.ks = ks
        self.similarity = similarity
        self.block_size = block_size
        self.paper_i2t = paper_i2t

    @classmethod
    def inconsistencies(cls, values):
        """Recall@K falling as K grows; ``mean_R@1`` not the mean of the two R@1; an MRR below its
        R@1 (a hit at rank 1 adds 1 to both); ``t2i_MRR`` other than ``t2i_mAP`` (one relevant image);
        a median rank on the wrong side of a K that more or fewer than half the queries hit within
        (image -> text only one way: ``paper_i2t`` counts hits within ``ceil(K / 5)``)."""
        problems = recall_order_problems(values, "i2t_R@") + recall_order_problems(values, "t2i_R@")
        problems += mean_problems(values, "mean_R@1", ("i2t_R@1", "t2i_R@1"))
        for direction in ("i2t", "t2i"):
            problems += at_least(values, f"{direction}_R@1", f"{direction}_MRR", "a hit at rank 1 adds 1 to both")
        problems += mean_problems(values, "t2i_MRR", ("t2i_mAP", "t2i_mAP"))
        return problems + median_problems(values, "i2t", both_ways=False) + median_problems(values, "t2i", both_ways=True)

    def compute(self, result: AlignmentResult) -> dict[str, float]:
        ranks = shared_ranks(result, self.similarity, self.block_size)
        return retrieval_scores(ranks.i2t, ranks.t2i, result.test.text_item, result.test.n_items, self.ks,
                                self.paper_i2t)


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
    count against the relevant class. ``text_labels`` must be the labels of the texts' items.
    """
    item_labels, text_labels = np.asarray(item_labels), np.asarray(text_labels)
    # The class ranks do not depend on which item a text belongs to: spread each class's texts over
    # its items, so that the instance counts stay cheap.
    text_item = np.zeros(len(text_labels), dtype=np.int64)
    for label in np.unique(text_labels):
        texts, items = np.flatnonzero(text_labels == label), np.flatnonzero(item_labels == label)
        if not len(items):  # its texts would have been counted as some other item's own
            raise ValueError(f"{len(texts)} texts have label {np.asarray(label).tolist()!r}, which no item has; text labels must be "
                             f"the labels of the texts' items.")
        text_item[texts] = items[np.arange(len(texts)) % len(items)]
    ranks = similarity_ranks(zx, zy, text_item, item_labels, block_size, tolerance, text_labels)
    return ranks.class_i2t, ranks.class_t2i


class ClassRetrieval(Metric):
    """Retrieval where a hit is anything of the query's class (needs dataset labels).

    ``class_i2t_R@K``: an image hits if a caption of any same-class image is in its top K;
    ``class_t2i_R@K``: a caption hits if a same-class image is in its top K. For datasets whose
    captions describe the class rather than the instance (fashion-mnist), these are the numbers
    to read; ``class_mean_R@1`` is their headline.
    """

    name = "class-retrieval"
    description = "Class-level cross-modal retrieval"
    parameter_ranges = {"ks": Range(low=1), "block_size": Range(low=1)}
    version = "3"  # 2: ties count against the relevant class; 3: ties within float32 rounding
    higher_is_better = {"class_i2t_R@": True, "class_t2i_R@": True, "class_mean_R@1": True}

    def __init__(self, ks: tuple[int, ...] = (1, 5, 10), block_size: int = 256):
        self.ks = ks
        self.block_size = block_size

    @classmethod
    def inconsistencies(cls, values):
        """Recall@K falling as K grows; ``class_mean_R@1`` not the mean of the two R@1. (Class recall
        is not held to be at least retrieval's: retrieval may rank by dot product, and even by
        cosine its thresholds come from another product than the class ones, so a score within a
        rounding of both can count against one and not the other.)"""
        problems = recall_order_problems(values, "class_i2t_R@") + recall_order_problems(values, "class_t2i_R@")
        return problems + mean_problems(values, "class_mean_R@1", ("class_i2t_R@1", "class_t2i_R@1"))

    def compute(self, result: AlignmentResult) -> dict[str, float]:
        labels = result.test.labels
        if labels is None:
            return {}
        ranks = shared_ranks(result, "cosine", self.block_size)
        i2t, t2i = ranks.class_i2t, ranks.class_t2i
        scores = {}
        for k in self.ks:
            scores[f"class_i2t_R@{k}"] = float(np.mean(i2t < k))
            scores[f"class_t2i_R@{k}"] = float(np.mean(t2i < k))
        scores["class_mean_R@1"] = float((np.mean(i2t < 1) + np.mean(t2i < 1)) / 2)
        return scores
