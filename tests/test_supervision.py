import numpy as np
import pytest

from alignbench import PairedData
from alignbench.errors import InvalidParameterError
from alignbench.supervision import draw_anchors

LEVELS = [0, 5, 20, 100]


@pytest.fixture
def train():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    text_item = np.repeat(np.arange(300), 3)
    return PairedData(x=x, y=rng.standard_normal((900, 4)).astype(np.float32), text_item=text_item)


@pytest.mark.parametrize("strategy", ["random", "kmeans", "fps"])
def test_anchor_sets_are_nested_and_reproducible(train, strategy):
    anchors = draw_anchors(train, LEVELS, seed=3, strategy=strategy)
    assert [len(anchors[level].items) for level in LEVELS] == LEVELS
    for small, large in zip(LEVELS, LEVELS[1:]):
        assert set(anchors[small].items) <= set(anchors[large].items)
        # The same item keeps the same text at every level.
        np.testing.assert_array_equal(anchors[large].texts[:small], anchors[small].texts)
    for level in LEVELS:
        assert len(set(anchors[level].items.tolist())) == level, "an item was drawn twice"
        assert (train.text_item[anchors[level].texts] == anchors[level].items).all(), "text of another item"
        np.testing.assert_array_equal(anchors[level].x, train.x[anchors[level].items])
    again = draw_anchors(train, LEVELS, seed=3, strategy=strategy)
    np.testing.assert_array_equal(again[100].items, anchors[100].items)
    other = draw_anchors(train, LEVELS, seed=4, strategy=strategy)
    assert not np.array_equal(other[100].items, anchors[100].items)


@pytest.mark.parametrize("strategy", ["random", "kmeans", "fps"])
def test_a_level_gets_the_same_anchors_whichever_other_levels_are_asked_for(train, strategy):
    # The runner asks only for the levels still to run: a resumed sweep must get the same anchors.
    alone = draw_anchors(train, [25], seed=3, strategy=strategy)[25]
    for levels in ([5, 10, 25, 100], [25, 100], [10, 25], [25, 250]):
        anchors = draw_anchors(train, levels, seed=3, strategy=strategy)
        np.testing.assert_array_equal(anchors[25].items, alone.items)
        np.testing.assert_array_equal(anchors[25].texts, alone.texts)
        for small, large in zip(levels, levels[1:]):  # nested: level L is the first L of a larger one
            np.testing.assert_array_equal(anchors[large].items[:small], anchors[small].items)
    np.testing.assert_array_equal(draw_anchors(train, [100], seed=3, strategy=strategy)[100].items[:25], alone.items)


def test_spread_strategies_cover_the_space_better_than_random(train):
    def distances(items):  # from every item to its nearest anchor
        return np.sqrt(((train.x[:, None, :] - train.x[None, items, :]) ** 2).sum(-1).min(axis=1))

    def average(strategy, statistic):
        return np.mean([statistic(distances(draw_anchors(train, [20], seed=s, strategy=strategy)[20].items))
                        for s in range(5)])

    # k-means centres minimize the mean distance; farthest points minimize the largest one.
    assert average("kmeans", np.mean) < average("random", np.mean)
    assert average("fps", np.max) < average("random", np.max)


def test_more_anchors_than_items_is_an_error(train):
    with pytest.raises(InvalidParameterError, match="train split has 300 items"):
        draw_anchors(train, [301], seed=0)
