"""Evaluation protocols. ``standard`` is the one alignbench reports; ``paper`` reproduces the seed-000
paper's table, flaws included, so that its numbers can be checked and set beside the standard ones.

The paper protocol differs in three ways (see SCIENCE.md): the captions of an image are averaged
into one text vector before anything else; anchors stay in the test gallery; and image->text
Recall@K is read from an image-level top ceil(K/5) (so R@1 = R@5). The first two happen here;
the third is the ``retrieval`` metric's ``paper_i2t`` parameter.
"""

from __future__ import annotations

import numpy as np

from .interfaces import Anchors, DatasetSplits, PairedData

PROTOCOLS = ("standard", "paper")


def average_captions(split: PairedData) -> PairedData:
    """One text per item: the mean of its texts' embeddings."""
    sums = np.zeros((split.n_items, split.y.shape[1]), dtype=np.float64)
    np.add.at(sums, split.text_item, split.y)
    counts = np.bincount(split.text_item, minlength=split.n_items)[:, None]
    return PairedData(x=split.x, y=(sums / counts).astype(np.float32), text_item=np.arange(split.n_items),
                      item_ids=split.item_ids, latent=split.latent, labels=split.labels)


def paper_splits(splits: DatasetSplits) -> DatasetSplits:
    return DatasetSplits(average_captions(splits.train), average_captions(splits.test), splits.modalities)


def gallery_with_anchors(test: PairedData, anchors: Anchors, train: PairedData) -> PairedData:
    """The test split with the anchor pairs appended as extra items (the paper's gallery), with their
    ids and class labels from ``train`` where both splits have them (class-level retrieval needs them)."""
    n = len(anchors.items)

    def joined(test_part, train_part):
        return None if test_part is None or train_part is None else \
            np.concatenate([np.asarray(test_part), np.asarray(train_part)[anchors.items]])

    ids = joined(test.item_ids, train.item_ids)
    return PairedData(
        x=np.concatenate([test.x, anchors.x]),
        y=np.concatenate([test.y, anchors.y]),
        text_item=np.concatenate([test.text_item, test.n_items + np.arange(n)]),
        item_ids=None if ids is None else tuple(ids.tolist()),
        latent=None if test.latent is None or anchors.latent is None else np.concatenate([test.latent, anchors.latent]),
        labels=joined(test.labels, train.labels),
    )
