import numpy as np
import pytest

from extras import needs_extra  # tests/support

from alignbench import AlignmentResult, Anchors, PairedData
from alignbench.runner import unpaired_rows
from alignbench.supervision import draw_anchors
from alignbench.testing import random_rotation
from alignbench_plugins.aligners.fmap import FunctionalMapAligner
from alignbench_plugins.aligners.gromov import GromovWassersteinAligner
from alignbench_plugins.metrics.correspondence import Correspondence, match_reach, match_truth


def fitted_result(train: PairedData, anchors: Anchors, aligner, seed=0):
    rows = unpaired_rows(train, anchors, seed)
    aligner.fit(anchors.x, anchors.y, train.x[rows[0]], train.y[rows[1]])
    return AlignmentResult(test=train, zx=train.x, zy=train.y, anchors=anchors, aligner=aligner, train=train,
                           unpaired_rows=rows)


def manifold_pair(n=1000, rotate=True, seed=0):
    rng = np.random.default_rng(seed)
    x = np.tanh(rng.standard_normal((n, 3)) @ rng.standard_normal((3, 32))).astype(np.float32)
    y = (x @ random_rotation(32, seed + 1)).astype(np.float32) if rotate else \
        rng.standard_normal((n, 32)).astype(np.float32)
    return PairedData(x=x, y=y, text_item=np.arange(n))


def test_matches_between_isometric_spaces_are_right():
    train = manifold_pair()
    anchors = draw_anchors(train, [10], 0)[10]
    scores = Correspondence().compute(fitted_result(train, anchors, FunctionalMapAligner()))
    assert scores["match_accuracy"] > 0.95 and scores["kept_match_accuracy"] > 0.95
    assert scores["matches_kept"] > 500
    assert scores["match_chance"] == pytest.approx(1 / 1000)


def test_matches_between_unrelated_spaces_are_at_chance():
    train = manifold_pair(rotate=False)
    anchors = draw_anchors(train, [10], 0)[10]
    scores = Correspondence().compute(fitted_result(train, anchors, FunctionalMapAligner()))
    assert scores["match_accuracy"] < 0.02


def test_a_shared_caption_is_right_for_any_item_that_has_it():
    # Items 0, 1 share caption string A; item 2 has B. Texts: 0->A, 1->A, 2->B.
    texts = np.array([[1, 0], [1, 0], [0, 1]], np.float32)
    text_item = np.array([0, 1, 2])
    x_item = np.array([0, 1, 2])  # x row r is item r
    y_text = np.array([0, 1, 2])
    matches = np.array([[0, 1], [1, 0], [2, 0], [2, 2]])  # (y row, x row)
    right, chance = match_truth(matches, x_item, y_text, text_item, texts)
    assert right.tolist() == [True, True, False, True]
    np.testing.assert_allclose(chance, [2 / 3, 2 / 3, 1 / 3, 1 / 3])


def test_aligners_without_matches_report_nothing():
    from dataclasses import replace

    from alignbench.testing import toy_result

    assert Correspondence().compute(replace(toy_result(), unpaired_rows=None)) == {}


def test_the_toy_aligners_matches_are_all_right():
    from alignbench.testing import toy_result

    scores = Correspondence().compute(toy_result())
    assert scores["match_accuracy"] == 1.0 and scores["kept_match_accuracy"] == 1.0
    assert scores["matches_kept"] == 165 and scores["match_chance"] == pytest.approx(1 / 60)


def test_no_matches_at_all_is_not_an_error():
    """500 anchors on 50 distinct captions pin every caption node: fmap finds no match of its own."""
    right, chance = match_truth(np.zeros((0, 2), np.int64), np.arange(3), np.arange(3), np.arange(3),
                                np.eye(3, dtype=np.float32))
    assert right.shape == (0,) and chance.shape == (0,)


def test_a_match_could_be_right_only_where_a_right_row_was_among_the_choices():
    # Items 0, 1 share caption string A; item 2 has B. Texts: 0->A, 1->A, 2->B; x row r is item r.
    texts = np.array([[1, 0], [1, 0], [0, 1]], np.float32)
    rows = np.arange(3)
    matches = np.array([[2, 0], [1, 0], [2, 2]])  # (y row, x row)
    # Picking x rows among item 0 only: a B caption has no right x row there, an A caption has.
    assert match_reach(matches, rows, rows, rows, texts, ("x", np.array([0]))).tolist() == [False, True, False]
    # Picking y rows among the B caption only: right for item 2's x row, for no other.
    assert match_reach(matches, rows, rows, rows, texts, ("y", np.array([2]))).tolist() == [False, False, True]
    # Picking y rows among item 0's caption only: its string A is item 1's too, so an x row of item 1
    # could be right there (judged by string, not by the item the caption row came from).
    assert match_reach(np.array([[0, 1], [0, 2]]), rows, rows, rows, texts, ("y", np.array([0]))).tolist() == \
        [True, False]


def test_gw_procrustes_could_only_be_right_for_items_whose_partner_it_sampled():
    needs_extra("ot", "ot")
    train = manifold_pair(n=300)
    anchors = draw_anchors(train, [10], 0)[10]
    result = fitted_result(train, anchors, GromovWassersteinAligner(n_samples=250))
    scores = Correspondence().compute(result)
    # Known from the rows: fit's x row r is item x_item[r]; each y row is one item's only text. The
    # matching is one to one between the two samples, so the matched y rows are the y sample.
    x_item = np.concatenate([anchors.items, result.unpaired_rows[0]])
    y_item = np.concatenate([anchors.texts, result.unpaired_rows[1]])  # text j belongs to item j
    y_rows, x_rows = result.aligner.matches_.T
    partner_sampled = np.isin(x_item[x_rows], y_item[y_rows])
    assert scores["match_ceiling"] == pytest.approx(partner_sampled.mean()) and 0.7 < scores["match_ceiling"] < 0.95
    assert scores["match_accuracy"] <= scores["match_ceiling"]


def test_fmap_cannot_match_a_caption_whose_image_is_outside_its_graph():
    # Images: a cloud of 300 and one of 100 far away, which a 15-NN graph never joins to it; captions:
    # one connected cloud. The 100 small-cloud captions are caption nodes without a right image node.
    rng = np.random.default_rng(4)
    big = np.tanh(rng.standard_normal((300, 3)) @ rng.standard_normal((3, 16)))
    x = np.concatenate([big, rng.standard_normal((100, 16)) + 100.0]).astype(np.float32)
    y = np.concatenate([big, 0.5 * rng.standard_normal((100, 16))]).astype(np.float32)
    train = PairedData(x=x, y=y, text_item=np.arange(400))
    anchors = draw_anchors(train.subset(np.arange(300)), [5], 0)[5]  # anchors in the big cloud
    result = fitted_result(train, anchors, FunctionalMapAligner(n_eigen=20))
    report = result.aligner.fit_report()
    assert (report["graph_share_x"], report["graph_share_y"]) == (0.75, 1.0)
    # 395 caption nodes are matched (5 are pinned anchors); the 100 small-cloud ones cannot be right.
    scores = Correspondence().compute(result)
    assert scores["match_ceiling"] == pytest.approx(295 / 395)
