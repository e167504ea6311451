"""No held-out item can ever become an anchor, for every built-in dataset that loads here."""

import numpy as np
import pytest

from alignbench import PairedData
from alignbench.supervision import draw_anchors
from caption_fixtures import fashion_idx, karpathy_coco, karpathy_flickr


def datasets(tmp_path):
    return [
        ("synthetic-gmm", {}), ("synthetic-correlated", {"n_items": 400}),
        ("coco", {"data_dir": str(karpathy_coco(tmp_path / "coco"))}),
        ("flickr30k", {"data_dir": str(karpathy_flickr(tmp_path / "f30k", "flickr30k", "flickr30k-images"))}),
        ("fashion-mnist", {"data_dir": str(fashion_idx(tmp_path / "fm")), "n_train": 20, "n_test": 10}),
    ]


def test_train_and_test_items_are_disjoint_and_anchors_come_from_train(registry, tmp_path):
    for name, params in datasets(tmp_path):
        splits = registry.create("dataset", name, params).load()
        train_ids, test_ids = set(splits.train.item_ids), set(splits.test.item_ids)
        assert not train_ids & test_ids, name
        train = splits.train
        if not train.is_embedded:  # anchors are drawn on embeddings; random ones serve this check
            rng = np.random.default_rng(0)
            train = PairedData(x=rng.standard_normal((train.n_items, 4)).astype(np.float32),
                               y=np.zeros((train.n_texts, 2), np.float32), text_item=train.text_item,
                               item_ids=train.item_ids)
        for strategy in ("random", "kmeans", "fps"):
            level = min(8, train.n_items)
            anchors = draw_anchors(train, [level], seed=0, strategy=strategy)[level]
            anchor_ids = {train.item_ids[i] for i in anchors.items}
            assert anchor_ids <= train_ids and not anchor_ids & test_ids, (name, strategy)


@pytest.mark.parametrize("seed", [0, 1])
def test_splits_are_deterministic(registry, seed):
    first = registry.create("dataset", "synthetic-correlated", {"n_items": 300, "seed": seed}).load()
    second = registry.create("dataset", "synthetic-correlated", {"n_items": 300, "seed": seed}).load()
    assert first.test.item_ids == second.test.item_ids
