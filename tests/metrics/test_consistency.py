"""The relations between a cell's scores that ``Metric.inconsistencies`` declares (results files are
checked against them): true of every cell the metrics compute, and each one caught when broken."""

import math

import numpy as np
import pytest

from alignbench import AlignmentResult, PairedData
from alignbench.arrays import l2_normalize
from alignbench.testing import toy_result
from alignbench_plugins.metrics.correspondence import Correspondence
from alignbench_plugins.metrics.retrieval import ClassRetrieval, Retrieval

KS = (1, 2, 3, 5, 10, 50)


def scored_cell(seed):
    """Retrieval and class retrieval of one random cell with duplicated images and captions (ties), 1-6
    captions per image and 2-5 classes, aligned anywhere from well to not at all."""
    rng = np.random.default_rng(seed)
    n_items, dim = int(rng.integers(20, 80)), 16
    base = rng.standard_normal((n_items // 2 + 1, dim)).astype(np.float32)
    zx = base[rng.integers(0, len(base), n_items)]
    text_item = np.repeat(np.arange(n_items), rng.integers(1, 7, n_items))
    noise = rng.uniform(0.1, 4.0)
    zy = zx[text_item] + noise * rng.standard_normal((len(text_item), dim)).astype(np.float32)
    repeated = rng.random(len(text_item)) < 0.3
    zy[repeated] = zy[rng.integers(0, len(text_item), repeated.sum())]  # repeated captions
    zx, zy = l2_normalize(zx), l2_normalize(zy)
    labels = rng.integers(0, int(rng.integers(2, 6)), n_items)
    base_result = toy_result()
    result = AlignmentResult(test=PairedData(x=zx, y=zy, text_item=text_item, labels=labels), zx=zx, zy=zy,
                             anchors=base_result.anchors, aligner=base_result.aligner)
    paper = bool(rng.integers(0, 2))
    return Retrieval(ks=KS, paper_i2t=paper).compute(result) | ClassRetrieval(ks=KS).compute(result)


def test_every_computed_cell_keeps_the_declared_relations():
    crossings = 0
    for seed in range(60):
        values = scored_cell(seed)
        for metric in (Retrieval, ClassRetrieval):
            assert metric.inconsistencies(values) == [], (seed, values)
        recalls = [values[f"t2i_R@{k}"] for k in KS]
        crossings += min(recalls) < 0.5 < max(recalls)
    # The median rank's relation binds only where recall crosses one half between the Ks: it must, often.
    assert crossings >= 20


def test_gw_and_fmap_matches_never_beat_their_ceiling():
    """On the toy cell (its aligner's matches right by construction) and on random matches."""
    from alignbench.testing import random_result

    for result in (toy_result(), random_result(seed=3), random_result(seed=4)):
        values = Correspondence().compute(result)
        assert values and Correspondence.inconsistencies(values) == []


BROKEN = [
    (Retrieval, {"i2t_R@1": 0.4, "i2t_R@5": 0.3},
     "i2t_R@5 = 0.3 is below i2t_R@1 = 0.4, but recall cannot fall as K grows"),
    (Retrieval, {"t2i_R@1": 0.2, "t2i_R@10": 0.5, "t2i_R@5": 0.1}, "t2i_R@5 = 0.1 is below t2i_R@1 = 0.2"),
    (Retrieval, {"i2t_R@1": 0.2, "t2i_R@1": 0.4, "mean_R@1": 0.25},
     "mean_R@1 = 0.25 is not the mean of i2t_R@1 and t2i_R@1 (0.3)"),
    (Retrieval, {"i2t_R@1": 0.5, "i2t_MRR": 0.4}, "i2t_MRR = 0.4 is below i2t_R@1 = 0.5, but a hit at rank 1"),
    (Retrieval, {"t2i_MRR": 0.4, "t2i_mAP": 0.3}, "t2i_MRR = 0.4 is not the mean of t2i_mAP and t2i_mAP"),
    (Retrieval, {"t2i_R@10": 0.6, "t2i_median_rank": 20.0},
     "t2i_median_rank = 20 is above 10, but t2i_R@10 = 0.6 puts more than half the queries within 10"),
    (Retrieval, {"t2i_R@5": 0.4, "t2i_median_rank": 3.0},
     "t2i_median_rank = 3 is at most 5, but t2i_R@5 = 0.4 puts fewer than half the queries within 5"),
    (Retrieval, {"i2t_R@10": 0.6, "i2t_median_rank": 11.0}, "i2t_median_rank = 11 is above 10"),
    (ClassRetrieval, {"class_i2t_R@1": 0.4, "class_i2t_R@10": 0.3}, "class_i2t_R@10 = 0.3 is below class_i2t_R@1"),
    (ClassRetrieval, {"class_i2t_R@1": 0.4, "class_t2i_R@1": 0.6, "class_mean_R@1": 0.6},
     "class_mean_R@1 = 0.6 is not the mean"),
    (Correspondence, {"match_accuracy": 0.5, "match_ceiling": 0.4},
     "match_ceiling = 0.4 is below match_accuracy = 0.5, but a right match is always reachable"),
    (Correspondence, {"matches_kept": 2.5}, "matches_kept = 2.5 is not a whole number of matches"),
]


@pytest.mark.parametrize("metric, values, problem", BROKEN)
def test_each_relation_is_caught_when_broken(metric, values, problem):
    found = metric.inconsistencies(values)
    assert len(found) == 1 and found[0].startswith(problem), found


@pytest.mark.parametrize("metric, values", [
    # image -> text with paper_i2t counts hits within ceil(K / 5): fewer than half within 5 says
    # nothing of the true median rank.
    (Retrieval, {"i2t_R@5": 0.4, "i2t_median_rank": 3.0}),
    # Scores that do not apply (None in a results file, NaN in a store) bound nothing.
    (Retrieval, {"i2t_R@1": math.nan, "i2t_R@5": 0.1, "t2i_R@1": None, "mean_R@1": 0.3}),
    # Class recall may fall below instance recall: retrieval by dot product ranks otherwise than
    # class retrieval's cosine (and rounding can split a near tie between the two passes).
    (ClassRetrieval, {"t2i_R@1": 1.0, "class_t2i_R@1": 0.5}),
    (Correspondence, {"match_accuracy": 0.5, "match_ceiling": math.nan, "matches_kept": None}),
    # Within the slack a score read back from a file may carry.
    (Retrieval, {"i2t_R@1": 0.3, "i2t_R@5": 0.3 - 1e-12}),
])
def test_what_the_relations_do_not_bound(metric, values):
    assert metric.inconsistencies(values) == []


def test_class_recall_below_instance_recall_is_a_legitimate_cell():
    """Retrieval by dot product beside class retrieval (always cosine): the long image wins its
    caption by dot product but not by cosine, so t2i R@1 is 1 and class t2i R@1 is 0.5. Neither
    metric may call that inconsistent."""
    zx = np.array([[10.0, 0.0], [0.8, 0.6]], np.float32)
    zy = np.array([[0.6, 0.8], [0.0, 1.0]], np.float32)
    base = toy_result()
    result = AlignmentResult(test=PairedData(x=zx, y=zy, text_item=np.array([0, 1]), labels=np.array([0, 1])),
                             zx=zx, zy=zy, anchors=base.anchors, aligner=base.aligner)
    values = Retrieval(similarity="dot").compute(result) | ClassRetrieval().compute(result)
    assert values["t2i_R@1"] == 1.0 and values["class_t2i_R@1"] == 0.5
    assert Retrieval.inconsistencies(values) == [] and ClassRetrieval.inconsistencies(values) == []
