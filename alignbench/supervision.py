"""Anchor selection: which train pairs an aligner is told about at each supervision level.

For one seed the anchor sets are nested: the 100 anchors of level 100 are among the 1,000 of
level 1,000, so a curve over levels measures supervision, not the luck of each draw. The set of a
level does not depend on which other levels are asked for: a sweep resumed with fewer levels gets
the same anchors for the same cell. Anchors come only from the train split. Each anchor item is
paired with one of its texts, drawn with the same seed. Selection looks at the x (item) side only:
choosing anchors must not peek at pairs.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.cluster.vq import kmeans2

from .errors import InvalidParameterError
from .interfaces import Anchors, PairedData

STRATEGIES = ("random", "kmeans", "fps")


def anchor_order(x: np.ndarray, levels: Sequence[int], rng: np.random.Generator, strategy: str = "random") -> np.ndarray:
    """Item indices whose first ``L`` entries are the anchors of level ``L``, for every level.

    The order depends on ``levels`` only through ``max(levels)``, its length: asking for fewer or
    smaller levels gives a prefix of the same order.

    x: ``(n, d)`` item embeddings of the train split.
    """
    top = max(levels, default=0)
    n = x.shape[0]
    if top > n:
        raise InvalidParameterError(f"{top} anchors asked for but the train split has {n} items; lower --anchors.")
    if strategy == "random":
        return rng.permutation(n)[:top]
    if strategy == "fps":
        return farthest_point_order(x, top, rng)
    if strategy == "kmeans":
        return nested_kmeans_order(x, top, rng)
    raise InvalidParameterError(f"unknown anchor strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}.")


def farthest_point_order(x: np.ndarray, count: int, rng: np.random.Generator, start: Sequence[int] = ()) -> np.ndarray:
    """Greedy farthest-point sampling from a random first point (or continuing from ``start``)."""
    x64 = x.astype(np.float64)
    chosen = list(start)
    if not chosen and count > 0:
        chosen.append(int(rng.integers(x.shape[0])))
    dist = np.full(x.shape[0], np.inf)
    for i in chosen:
        dist = np.minimum(dist, ((x64 - x64[i]) ** 2).sum(axis=1))
    while len(chosen) < count:
        nxt = int(np.argmax(dist))
        chosen.append(nxt)
        dist = np.minimum(dist, ((x64 - x64[nxt]) ** 2).sum(axis=1))
    return np.asarray(chosen[:count], dtype=np.int64)


def kmeans_schedule(count: int, n: int) -> list[int]:
    """Cluster counts 1, 2, 4, ... (at most ``n``), up to the first that reaches ``count``."""
    sizes = [1]
    while sizes[-1] < min(count, n):
        sizes.append(min(2 * sizes[-1], n))
    return sizes if count > 0 else []


def nested_kmeans_order(x: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """The first ``count`` items of a nested k-means order.

    Stage ``j`` runs k-means with the ``j``-th count of :func:`kmeans_schedule` (1, 2, 4, ...) and a
    seed of its own, keeps the anchors of the previous stages and adds, largest cluster first, the
    item nearest to each centre whose cluster no kept anchor is in (farthest points fill any gap).
    The schedule does not depend on the levels asked for, so the first ``L`` items are the same
    whatever ``count >= L`` is.
    """
    x64 = x.astype(np.float64)
    root = int(rng.integers(2**63))
    chosen: list[int] = []
    for stage, size in enumerate(kmeans_schedule(count, x.shape[0])):
        stage_rng = np.random.default_rng([root, stage])
        centres, labels = kmeans2(x64, size, minit="++", seed=stage_rng, missing="warn")
        covered = set(labels[chosen].tolist())
        sizes = np.bincount(labels, minlength=size)
        taken = set(chosen)
        for c in np.argsort(-sizes, kind="stable"):
            if len(chosen) == size:
                break
            if c in covered or sizes[c] == 0:
                continue
            members = np.flatnonzero(labels == c)
            members = members[[m not in taken for m in members]]
            if members.size:
                nearest = int(members[np.argmin(((x64[members] - centres[c]) ** 2).sum(axis=1))])
                chosen.append(nearest)
                taken.add(nearest)
        if len(chosen) < size:  # empty or already-covered clusters: fill the gap by farthest points
            chosen = farthest_point_order(x, size, stage_rng, start=chosen).tolist()
    return np.asarray(chosen[:count], dtype=np.int64)


def draw_anchors(
    train: PairedData, levels: Sequence[int], seed: int, strategy: str = "random"
) -> dict[int, Anchors]:
    """Nested anchor sets for every level, reproducible from ``seed``; the set of a level is the
    same whichever other levels are asked for."""
    if not train.is_embedded:
        raise InvalidParameterError("anchors are drawn from embeddings; encode the train split first.")
    order_rng, text_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    order = anchor_order(train.x, levels, order_rng, strategy)
    # One text per item, drawn once per seed so that the same item keeps the same text at every level.
    keys = text_rng.random(train.n_texts)
    by_item = np.lexsort((-keys, train.text_item))
    first = np.searchsorted(train.text_item[by_item], np.arange(train.n_items))
    text_of_item = by_item[first]
    out = {}
    for level in levels:
        items = order[:level]
        texts = text_of_item[items]
        out[level] = Anchors(
            items=items,
            texts=texts,
            x=train.x[items],
            y=train.y[texts],
            latent=None if train.latent is None else train.latent[items],
        )
    return out
