import numpy as np
import pytest

from alignbench import AlignmentResult, PairedData
from alignbench.testing import toy_result
from alignbench_plugins.metrics.alignment_error import AlignmentError, unexplained_variance


def test_zero_for_identical_spaces_and_about_two_for_independent_ones():
    base = toy_result()
    rng = np.random.default_rng(0)
    z = rng.standard_normal((500, 6)).astype(np.float32)
    test = PairedData(x=z, y=z, text_item=np.arange(500))
    same = AlignmentError().compute(AlignmentResult(test, z, z, base.anchors, base.aligner))
    assert same["alignment_error_heldout"] == 0.0 and same["relative_alignment_error_heldout"] == 0.0
    other = rng.standard_normal((500, 6)).astype(np.float32)
    apart = AlignmentError().compute(AlignmentResult(test, z, other, base.anchors, base.aligner))
    assert apart["relative_alignment_error_heldout"] == pytest.approx(2.0, abs=0.2)


def test_collapse_is_not_rewarded():
    base = toy_result()
    zero = np.zeros((60, 8), dtype=np.float32)
    scores = AlignmentError().compute(AlignmentResult(base.test, zero, np.zeros((180, 8), np.float32),
                                                      base.anchors, base.aligner))
    assert scores["alignment_error_heldout"] == 0.0
    assert np.isnan(scores["relative_alignment_error_heldout"])


def test_reconstruction_error_is_zero_for_an_affine_image_of_the_latent():
    rng = np.random.default_rng(1)
    latent = rng.standard_normal((200, 2))
    assert unexplained_variance(latent @ rng.standard_normal((2, 5)) + 1.0, latent) < 1e-12
    assert unexplained_variance(rng.standard_normal((200, 5)), latent) > 0.9
