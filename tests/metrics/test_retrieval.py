import numpy as np
import pytest

from alignbench.testing import toy_result
from alignbench_plugins.metrics.retrieval import Retrieval, retrieval_ranks, retrieval_scores


def reference_scores(zx, zy, text_item, ks=(1, 5, 10)):
    """Straightforward sort-based implementation of the same protocol, for comparison."""
    zx = zx / np.linalg.norm(zx, axis=1, keepdims=True)
    zy = zy / np.linalg.norm(zy, axis=1, keepdims=True)
    s = zx @ zy.T
    n_items = len(zx)
    best, aps = [], []
    for i in range(n_items):
        order = np.argsort(-s[i], kind="stable")
        relevant = text_item[order] == i
        positions = np.flatnonzero(relevant) + 1
        best.append(positions[0])
        aps.append(np.mean(np.arange(1, len(positions) + 1) / positions))
    t2i = np.array([1 + np.sum(np.delete(s[:, t], text_item[t]) >= s[text_item[t], t]) for t in range(len(zy))])
    best = np.array(best)
    out = {f"i2t_R@{k}": np.mean(best <= k) for k in ks} | {f"t2i_R@{k}": np.mean(t2i <= k) for k in ks}
    out |= {"i2t_mAP": np.mean(aps), "t2i_mAP": np.mean(1 / t2i), "i2t_MRR": np.mean(1 / best),
            "i2t_median_rank": np.median(best), "t2i_median_rank": np.median(t2i)}
    return out


def result_for(zx, zy, text_item):
    base = toy_result()
    from alignbench import AlignmentResult, PairedData

    test = PairedData(x=zx, y=zy, text_item=text_item)
    return AlignmentResult(test=test, zx=zx, zy=zy, anchors=base.anchors, aligner=base.aligner)


def test_perfect_alignment_scores_one():
    rng = np.random.default_rng(0)
    zx = rng.standard_normal((300, 16)).astype(np.float32)
    text_item = np.repeat(np.arange(300), 5)
    zy = zx[text_item] + 0.001 * rng.standard_normal((1500, 16)).astype(np.float32)
    scores = Retrieval().compute(result_for(zx, zy, text_item))
    for key in ("i2t_R@1", "t2i_R@1", "mean_R@1", "i2t_R@10", "t2i_mAP", "i2t_mAP", "i2t_MRR"):
        assert scores[key] == 1.0, key
    assert scores["i2t_median_rank"] == 1.0 and scores["t2i_median_rank"] == 1.0


def test_random_alignment_scores_chance():
    rng = np.random.default_rng(1)
    n_items, per_item = 1000, 5
    zx = rng.standard_normal((n_items, 64)).astype(np.float32)
    text_item = np.repeat(np.arange(n_items), per_item)
    zy = rng.standard_normal((n_items * per_item, 64)).astype(np.float32)
    scores = Retrieval().compute(result_for(zx, zy, text_item))
    # t2i: 1 relevant image of 1000; i2t: 5 relevant texts of 5000, best of them in the top K.
    assert scores["t2i_R@10"] == pytest.approx(10 / n_items, abs=0.005)
    assert scores["i2t_R@10"] == pytest.approx(1 - (1 - 10 / 5000) ** 5, abs=0.01)
    assert scores["t2i_R@1"] < 0.005 and scores["i2t_R@1"] < 0.006
    assert scores["t2i_median_rank"] == pytest.approx(n_items / 2, rel=0.1)


@pytest.mark.parametrize("block_size", [1, 7, 64, 10_000])
def test_matches_a_sort_based_reference_for_any_block_size(block_size):
    rng = np.random.default_rng(2)
    n_items = 120
    text_item = np.concatenate([np.arange(n_items), rng.integers(0, n_items, size=250)])  # 1 to ~6 texts each
    latent = rng.standard_normal((n_items, 8))
    zx = (latent + 0.8 * rng.standard_normal((n_items, 8))).astype(np.float32)
    zy = (latent[text_item] + 0.8 * rng.standard_normal((len(text_item), 8))).astype(np.float32)
    scores = Retrieval(block_size=block_size).compute(result_for(zx, zy, text_item))
    expected = reference_scores(zx, zy, text_item)
    for key, value in expected.items():
        assert scores[key] == pytest.approx(value, abs=1e-9), key


def test_ranks_on_a_hand_worked_example():
    # Two items; item 0 has texts 0, 1; item 1 has text 2. Scores (rows: items, cols: texts):
    #   item 0: [0.1, 0.9, 0.5]   -> best relevant 0.9 ranks 1; text 0 (0.1) has 1 non-relevant above
    #   item 1: [0.8, 0.2, 0.3]   -> text 2 (0.3) has 1 non-relevant above (0.8)
    # text->image: text 0: item 1 (0.8) beats item 0 (0.1) -> rank 2; text 1: rank 1;
    #   text 2: item 0 (0.5) beats item 1 (0.3) -> rank 2.
    zx = np.eye(2, dtype=np.float32)
    zy = np.array([[0.1, 0.8], [0.9, 0.2], [0.5, 0.3]], dtype=np.float32)
    text_item = np.array([0, 0, 1])
    i2t, t2i = retrieval_ranks(zx, zy, text_item)
    assert i2t.tolist() == [1, 0, 1] and t2i.tolist() == [1, 0, 1]
    scores = retrieval_scores(i2t, t2i, text_item, 2, ks=(1,))
    assert scores["i2t_R@1"] == 0.5  # item 0 hits, item 1 misses
    assert scores["t2i_R@1"] == pytest.approx(1 / 3)
    assert scores["t2i_mAP"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    # AP item 0: texts at positions 1 and 3 -> (1/1 + 2/3) / 2; item 1: position 2 -> 1/2.
    assert scores["i2t_mAP"] == pytest.approx(((1 + 2 / 3) / 2 + 0.5) / 2)


def test_a_collapsed_alignment_scores_zero_not_one():
    zx = np.ones((50, 4), dtype=np.float32)
    zy = np.ones((100, 4), dtype=np.float32)
    scores = Retrieval().compute(result_for(zx, zy, np.repeat(np.arange(50), 2)))
    assert scores["i2t_R@1"] == 0.0 and scores["t2i_R@1"] == 0.0 and scores["t2i_median_rank"] == 50.0
