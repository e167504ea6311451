"""Anchor selection: which train pairs an aligner is told about at each supervision level.

For one seed the anchor sets are nested: the 100 anchors of level 100 are among the 1,000 of
level 1,000, so a curve over levels measures supervision, not the luck of each draw. Anchors
come only from the train split. Each anchor item is paired with one of its texts, drawn with the
same seed. Selection looks at the x (item) side only: choosing anchors must not peek at pairs.
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
        return _nested_kmeans_order(x, sorted(set(levels)), rng)
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


def _nested_kmeans_order(x: np.ndarray, levels: list[int], rng: np.random.Generator) -> np.ndarray:
    """k-means centres snapped to items, kept nested: level L keeps level L-1's anchors and adds the
    items nearest to the centres that no kept anchor already represents."""
    x64 = x.astype(np.float64)
    chosen: list[int] = []
    for level in levels:
        if level <= len(chosen):
            continue
        centres, labels = kmeans2(x64, level, minit="++", seed=rng, missing="warn")
        covered = set(labels[chosen].tolist()) if chosen else set()
        sizes = np.bincount(labels, minlength=level)
        taken = set(chosen)
        for c in np.argsort(-sizes, kind="stable"):
            if len(chosen) == level:
                break
            if c in covered or sizes[c] == 0:
                continue
            members = np.flatnonzero(labels == c)
            members = members[[m not in taken for m in members]]
            if members.size:
                nearest = int(members[np.argmin(((x64[members] - centres[c]) ** 2).sum(axis=1))])
                chosen.append(nearest)
                taken.add(nearest)
        if len(chosen) < level:  # empty or already-covered clusters: fill the gap by farthest points
            chosen = farthest_point_order(x, level, rng, start=chosen).tolist()
    return np.asarray(chosen, dtype=np.int64)


def draw_anchors(
    train: PairedData, levels: Sequence[int], seed: int, strategy: str = "random"
) -> dict[int, Anchors]:
    """Nested anchor sets for every level, reproducible from ``seed``."""
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
