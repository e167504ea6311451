import numpy as np
import pytest

from alignbench import AlignmentResult, Anchors, PairedData
from alignbench.runner import unpaired_rows
from alignbench.supervision import draw_anchors
from alignbench.testing import random_rotation
from alignbench_plugins.aligners.fmap import FunctionalMapAligner
from alignbench_plugins.metrics.correspondence import Correspondence, match_truth


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
