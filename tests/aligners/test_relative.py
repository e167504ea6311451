import numpy as np

from alignbench.testing import random_rotation, top1_accuracy
from alignbench_plugins.aligners.relative import RelativeAligner
from alignbench_plugins.datasets.synthetic_correlated import SyntheticCorrelated
from alignbench_plugins.metrics.retrieval import Retrieval
from alignbench import AlignmentResult, Anchors


def test_relative_space_is_invariant_to_rotation_and_scale():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 16)).astype(np.float32)
    y = (3.0 * x @ random_rotation(16, 5)).astype(np.float32)
    aligner = RelativeAligner().fit(x[:20], y[:20])
    np.testing.assert_allclose(aligner.transform_x(x), aligner.transform_y(y), atol=1e-5)
    assert top1_accuracy(aligner.transform_x(x[20:]), aligner.transform_y(y[20:])) == 1.0


def test_beats_chance_widely_on_synthetic_correlated():
    splits = SyntheticCorrelated(n_items=1000).load()
    train, test = splits.train, splits.test
    items = np.arange(100)
    texts = np.array([train.texts_of(i)[0] for i in items])
    aligner = RelativeAligner().fit(train.x[items], train.y[texts])
    result = AlignmentResult(test=test, zx=aligner.transform_x(test.x), zy=aligner.transform_y(test.y),
                             anchors=Anchors(items, texts, train.x[items], train.y[texts]), aligner=aligner)
    scores = Retrieval().compute(result)
    chance = 1 / test.n_items
    assert scores["t2i_R@1"] > 50 * chance and scores["i2t_R@1"] > 50 * chance
