import numpy as np
import pytest

from alignbench.testing import toy_result
from alignbench.arrays import l2_normalize
from alignbench_plugins.metrics.retrieval import (
    Retrieval, label_ranks, retrieval_ranks, retrieval_scores, similarity_ranks, tie_tolerance,
)


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


def brute_force_ranks(zx, zy, text_item, tolerance):
    """Every pair's score in float64, one comparison at a time: the tie rule as written in the module
    docstring (a competitor within ``tolerance`` of the relevant score counts against it)."""
    s = zx.astype(np.float64) @ zy.astype(np.float64).T
    i2t = [sum(s[text_item[t], u] >= s[text_item[t], t] - tolerance for u in range(len(zy)) if text_item[u] != text_item[t])
           for t in range(len(zy))]
    t2i = [sum(s[j, t] >= s[text_item[t], t] - tolerance for j in range(len(zx)) if j != text_item[t])
           for t in range(len(zy))]
    return np.array(i2t), np.array(t2i)


@pytest.mark.parametrize("case", range(40))
def test_exact_duplicates_always_count_against_the_relevant_item(case):
    """Duplicated images and captions, 1-7 captions per item: every duplicate of a relevant item
    ties with it and counts against it (the old code compared an einsum against a matmul and missed
    such ties whenever the two rounded differently)."""
    rng = np.random.default_rng(case)
    n_items = int(rng.integers(20, 60))
    base_x = rng.standard_normal((n_items // 2, 24)).astype(np.float32)
    zx = base_x[rng.integers(0, len(base_x), n_items)]  # duplicate images
    counts = rng.integers(1, 8, n_items)
    text_item = np.repeat(np.arange(n_items), counts)
    strings = rng.standard_normal((7, 24)).astype(np.float32)
    zy = np.where(rng.random((len(text_item), 1)) < 0.5, zx[text_item] + 0.3 * rng.standard_normal((len(text_item), 24)),
                  strings[rng.integers(0, 7, len(text_item))]).astype(np.float32)  # half are repeated "strings"
    zx, zy = l2_normalize(zx), l2_normalize(zy)
    tolerance = tie_tolerance(zx, zy)
    i2t, t2i = retrieval_ranks(zx, zy, text_item, block_size=int(rng.integers(1, 40)))
    expected_i2t, expected_t2i = brute_force_ranks(zx, zy, text_item, tolerance)
    np.testing.assert_array_equal(t2i, expected_t2i)
    np.testing.assert_array_equal(i2t, expected_i2t)
    # Every duplicate of the relevant image is counted: t2i rank >= number of its other copies.
    copies = (zx[:, None, :] == zx[None, :, :]).all(axis=2).sum(axis=1) - 1
    assert (t2i >= copies[text_item]).all()


def test_a_duplicate_of_the_relevant_image_is_never_missed():
    """1,000 trials of an exact duplicate of the relevant image at random positions: each counts."""
    rng = np.random.default_rng(7)
    missed = 0
    for _ in range(1000):
        zx = l2_normalize(rng.standard_normal((9, 384)).astype(np.float32))
        zx[int(rng.integers(1, 9))] = zx[0]
        zy = l2_normalize((zx[[0]] + 0.5 * rng.standard_normal((1, 384))).astype(np.float32))
        _, t2i = retrieval_ranks(zx, zy, np.array([0]), block_size=int(rng.integers(1, 10)))
        missed += int(t2i[0] < 1)
    assert missed == 0


def test_class_ranks_count_tied_other_class_duplicates():
    rng = np.random.default_rng(3)
    zx = l2_normalize(rng.standard_normal((6, 384)).astype(np.float32))
    zx[3] = zx[0]  # another class's image, identical to class 0's only image
    labels = np.array([0, 1, 1, 2, 2, 2])
    zy = l2_normalize((zx[[0, 1, 3]] + 0.1 * rng.standard_normal((3, 384))).astype(np.float32))
    text_labels = np.array([0, 1, 2])
    i2t, t2i = label_ranks(zx, zy, labels, text_labels)
    assert t2i[0] >= 1 and t2i[2] >= 1  # the duplicate of the best same-class image ties against it


def test_class_ranks_refuse_texts_of_a_class_no_item_has():
    # Such a text was counted as item 0's own, so it never ranked against item 0 (a tie went uncounted).
    zx, zy = np.array([[1, 0], [0, 1]], np.float32), np.array([[1, 0], [0, 1], [1, 0]], np.float32)
    with pytest.raises(ValueError, match="label 2, which no item has"):
        label_ranks(zx, zy, np.array([0, 1]), np.array([0, 1, 2]), tolerance=0.0)
    with pytest.raises(ValueError, match="label 'c', which no item has"):
        label_ranks(zx, zy, np.array(["a", "b"], object), np.array(["a", "b", "c"], object), tolerance=0.0)


@pytest.mark.parametrize("similarity", ["cosine", "dot"])
def test_integer_embeddings_give_the_brute_force_ranks_exactly(similarity):
    """Small integer coordinates: every score is exact in float32, so ties are exact by construction."""
    rng = np.random.default_rng(11)
    text_item = np.repeat(np.arange(40), rng.integers(1, 8, 40))
    zx = rng.integers(-2, 3, (40, 6)).astype(np.float32)
    zy = rng.integers(-2, 3, (len(text_item), 6)).astype(np.float32)
    metric = Retrieval(similarity=similarity)
    scores = metric.compute(result_for(zx, zy, text_item))
    ax, ay = (l2_normalize(zx), l2_normalize(zy)) if similarity == "cosine" else (zx, zy)
    i2t, t2i = brute_force_ranks(ax, ay, text_item, tie_tolerance(ax, ay))
    expected = retrieval_scores(i2t, t2i, text_item, 40, metric.ks)
    assert scores == pytest.approx(expected, abs=0)


def brute_force_class_ranks(zx, zy, labels, text_labels, tolerance):
    """The class tie rule one pair at a time, in float64."""
    s = zx.astype(np.float64) @ zy.astype(np.float64).T
    same = labels[:, None] == text_labels[None, :]
    best_text = np.where(same, s, -np.inf).max(axis=1)
    best_item = np.where(same, s, -np.inf).max(axis=0)
    i2t = ((s >= best_text[:, None] - tolerance) & ~same).sum(axis=1)
    t2i = ((s >= best_item[None, :] - tolerance) & ~same).sum(axis=0)
    return i2t, t2i


@pytest.mark.parametrize("workers", [1, 3])
@pytest.mark.parametrize("sparse_fraction", [0.0, 1 / 32, 1.0])  # always whole-tile, mixed, always gathered
@pytest.mark.parametrize("case", range(6))
def test_one_pass_counts_whole_tiles_and_gathered_scores_alike(monkeypatch, sparse_fraction, case, workers):
    """similarity_ranks counts densely or by gathering, tile by tile (small tiles here), in one thread
    or in several that share the row blocks: the instance and class ranks equal the brute-force ones
    every way, duplicates (exact ties) included."""
    from alignbench_plugins.metrics import retrieval

    monkeypatch.setattr(retrieval, "SPARSE_FRACTION", sparse_fraction)
    monkeypatch.setattr(retrieval, "TILE_BYTES", 4 * 8 * 300)
    rng = np.random.default_rng(100 + case)
    n_items = int(rng.integers(30, 120))
    zx = rng.standard_normal((n_items // 2, 24)).astype(np.float32)[rng.integers(0, n_items // 2, n_items)]
    text_item = np.repeat(np.arange(n_items), rng.integers(1, 7, n_items))
    zy = (zx[text_item] + [0.2, 1.0, 5.0][case % 3] * rng.standard_normal((len(text_item), 24))).astype(np.float32)
    zy[rng.random(len(zy)) < 0.3] = zy[0]  # a repeated "string"
    zx, zy = l2_normalize(zx), l2_normalize(zy)
    labels = rng.integers(0, int(rng.integers(1, 5)), n_items)
    tolerance = tie_tolerance(zx, zy)
    ranks = retrieval.similarity_ranks(zx, zy, text_item, labels, block_size=8, workers=workers)
    expected_i2t, expected_t2i = brute_force_ranks(zx, zy, text_item, tolerance)
    np.testing.assert_array_equal(ranks.i2t, expected_i2t)
    np.testing.assert_array_equal(ranks.t2i, expected_t2i)
    class_i2t, class_t2i = brute_force_class_ranks(zx, zy, labels, labels[text_item], tolerance)
    np.testing.assert_array_equal(ranks.class_i2t, class_i2t)
    np.testing.assert_array_equal(ranks.class_t2i, class_t2i)


def test_the_workers_default_to_the_blas_threads_and_the_ranks_do_not_depend_on_them(monkeypatch):
    """Workers hold BLAS to one thread for the whole pass: the ranks are those of one worker on one BLAS
    thread, exactly, duplicates included. (One BLAS thread gives other last bits than two, so against
    a pass on two BLAS threads a score within rounding of its threshold may count otherwise.)"""
    from threadpoolctl import threadpool_limits

    from alignbench_plugins.metrics import retrieval

    used = []
    monkeypatch.setattr(retrieval, "ThreadPoolExecutor",
                        lambda n: used.append(n) or __import__("concurrent.futures").futures.ThreadPoolExecutor(n))
    rng = np.random.default_rng(7)
    zx = l2_normalize(rng.standard_normal((600, 384)).astype(np.float32))
    text_item = np.repeat(np.arange(600), 5)
    zy = l2_normalize(zx[text_item] + 3 * rng.standard_normal((3000, 384)).astype(np.float32))
    zy[::7] = zy[0]  # a repeated caption: exact ties whose last bits move with the threads
    labels = rng.integers(0, 10, 600)
    with threadpool_limits(limits=2, user_api="blas"):
        threaded = retrieval.similarity_ranks(zx, zy, text_item, labels)
        assert retrieval.blas_threads() == 2  # as it was before the pass
    with threadpool_limits(limits=1, user_api="blas"):
        alone = retrieval.similarity_ranks(zx, zy, text_item, labels)
    assert used == [2]
    for name in ("i2t", "t2i", "class_i2t", "class_t2i"):
        np.testing.assert_array_equal(getattr(threaded, name), getattr(alone, name))


def test_retrieval_and_class_retrieval_share_one_pass(monkeypatch):
    from alignbench_plugins.metrics import retrieval
    from alignbench_plugins.metrics.retrieval import ClassRetrieval

    calls = []
    original = retrieval.similarity_ranks
    monkeypatch.setattr(retrieval, "similarity_ranks", lambda *a, **k: calls.append(1) or original(*a, **k))
    result = toy_result()
    alone = ClassRetrieval().compute(toy_result()) | Retrieval().compute(toy_result())
    calls.clear()
    together = Retrieval().compute(result) | ClassRetrieval().compute(result)
    assert len(calls) == 1 and together == alone
    Retrieval(similarity="dot").compute(result)  # another similarity is another pass
    assert len(calls) == 2


def test_an_item_whose_class_has_no_texts_still_gets_its_instance_ranks():
    """Explicit text labels that leave an item's class without texts: every other text counts against
    its class, and its instance rank is still counted (the pass stopped at the class's -inf threshold)."""
    zx = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    zy = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    text_item, labels, text_labels = np.array([0, 1]), np.array([0, 1]), np.array([0, 7])
    ranks = similarity_ranks(zx, zy, text_item, labels, block_size=1, text_labels=text_labels, workers=1)
    np.testing.assert_array_equal(ranks.i2t, brute_force_ranks(zx, zy, text_item, tie_tolerance(zx, zy))[0])
    np.testing.assert_array_equal(ranks.i2t, [1, 1])  # item 1 scores text 0 as high as its own text
    np.testing.assert_array_equal(ranks.class_i2t, [1, 2])


def test_no_texts_give_empty_ranks():
    zx = np.eye(2, dtype=np.float32)
    ranks = similarity_ranks(zx, np.zeros((0, 2), np.float32), np.zeros(0, int), np.array([0, 1]))
    assert ranks.i2t.size == ranks.t2i.size == ranks.class_t2i.size == 0
    np.testing.assert_array_equal(ranks.class_i2t, [0, 0])
