"""``open-clip-image`` / ``open-clip-text``: OpenCLIP's real loading code (create_model_and_transforms,
its tokenizer, its checkpoint readers) on a TINY RANDOM OpenCLIP model built from a model config and
saved to a temporary folder. No OpenCLIP weights ship offline: these runs check loading, sharing and
shapes, NOT real-weight quality. Needs the openclip extra (open_clip + a torchvision that matches torch)."""

import numpy as np
import pytest

from extras import needs_extra  # tests/support

torch = needs_extra("torch", "encoders")
open_clip = needs_extra("open_clip", "openclip")

from alignbench.errors import InvalidInputError  # noqa: E402
from alignbench.testing import check_encoder  # noqa: E402
from alignbench_plugins.encoders.images import to_rgb  # noqa: E402
from alignbench_plugins.encoders.openclip import OpenCLIPImageEncoder, OpenCLIPTextEncoder, load_open_clip  # noqa: E402
from alignbench_plugins.encoders.runtime import EncoderUnavailableError  # noqa: E402
from tiny_encoder_weights import tiny_open_clip  # noqa: E402  (tests/support)

rng = np.random.default_rng(0)
IMAGES = [rng.integers(0, 255, (40, 56, 3), dtype=np.uint8), rng.integers(0, 255, (48, 48), dtype=np.uint8),
          rng.integers(0, 255, (64, 40, 3), dtype=np.uint8)]
CAPTIONS = ["a man riding a bike", "two dogs in the park", "a red bus on the street"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_open_clip(tmp_path_factory.mktemp("tiny-random-open-clip"))


@pytest.fixture(scope="module")
def reference(tiny):
    """The tiny model's own outputs: open_clip's model, preprocessing and tokenizer, used directly."""
    model, _, preprocess = open_clip.create_model_and_transforms("tiny-open-clip", pretrained=tiny["checkpoint"])
    tokenizer = open_clip.get_tokenizer("tiny-open-clip")
    with torch.inference_mode():
        images = model.eval().encode_image(torch.stack([preprocess(to_rgb(i)) for i in IMAGES])).numpy()
        texts = model.encode_text(tokenizer(CAPTIONS)).numpy()
    return images, texts


def pair(**params):
    params = {"device": "cpu", **params}
    return OpenCLIPImageEncoder(**params), OpenCLIPTextEncoder(**params)


@pytest.mark.parametrize("form", ["checkpoint", "pt", "weights", "folder"])
def test_every_way_of_naming_the_weights_loads_them(tiny, reference, form):
    params = {"checkpoint": {"model": tiny["config"], "pretrained": tiny["checkpoint"]},
              "pt": {"model": tiny["config"], "pretrained": tiny["pt"]},  # read with weights_only=True
              "weights": {"model": tiny["config"], "pretrained": None, "weights": tiny["checkpoint"]},
              "folder": {"model": f"local-dir:{tiny['folder']}", "pretrained": None}}[form]
    images, texts = pair(batch_size=2, **params)
    zx, zy = images.encode(IMAGES), texts.encode(CAPTIONS)
    assert zx.shape == (3, 16) and zy.shape == (3, 16) and images.dim == texts.dim == 16
    assert zx.dtype == np.float32 and zy.dtype == np.float32
    np.testing.assert_allclose(zx, reference[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(zy, reference[1], rtol=1e-4, atol=1e-5)


def test_the_image_and_text_encoders_share_one_loaded_model(tiny):
    load_open_clip.cache_clear()
    images, texts = pair(model=tiny["config"], pretrained=tiny["checkpoint"])
    images.encode(IMAGES[:1])
    texts.encode(CAPTIONS[:1])
    assert images.model is texts.model
    info = load_open_clip.cache_info()
    assert info.misses == 1 and info.hits == 1


def test_both_towers_pass_the_conformance_suite(tiny):
    images, texts = pair(model=tiny["config"], pretrained=tiny["checkpoint"])
    assert check_encoder(images) == 10 and check_encoder(texts) == 10


def test_the_identity_fingerprints_the_checkpoint_and_the_config(tiny, tmp_path):
    images, _ = pair(model=tiny["config"], pretrained=tiny["checkpoint"])
    weights = images.identity()["weights"]
    assert weights["files"][0][0] == "tiny-open-clip.safetensors" and len(weights["config_sha256"]) == 64
    other = tmp_path / "other.safetensors"
    other.write_bytes(open(tiny["checkpoint"], "rb").read() + b"")
    assert pair(model=tiny["config"], pretrained=str(other))[0].identity()["weights"] != weights


def test_a_tag_names_its_hub_repository_and_is_unavailable_until_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    images, _ = pair(model="ViT-B-32", pretrained="laion2b_s34b_b79k")
    assert images.identity()["weights"] == {"tag": "laion2b_s34b_b79k", "hub": "laion/CLIP-ViT-B-32-laion2B-s34B-b79K",
                                             "revision": None}
    assert not images.available()  # nothing downloads here; conformance checks skip with the reason
    with pytest.raises(EncoderUnavailableError, match=r"list_pretrained.*--param open-clip-image.pretrained="):
        images.encode(IMAGES[:1])


def test_an_unknown_architecture_fails_with_one_line(tiny):
    with pytest.raises(EncoderUnavailableError, match="did not load"):
        OpenCLIPImageEncoder(model="no-such-arch", pretrained=tiny["checkpoint"], device="cpu").encode(IMAGES[:1])


def test_the_wrong_modality_is_refused(tiny):
    images, texts = pair(model=tiny["config"], pretrained=tiny["checkpoint"])
    with pytest.raises(InvalidInputError, match="encodes images"):
        images.encode(CAPTIONS)
    with pytest.raises(InvalidInputError, match="encodes text"):
        texts.encode(IMAGES)
