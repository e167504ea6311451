"""The torch encoders on a CUDA GPU: ``device=auto`` takes it, embeddings come back as float32 numpy
rows that equal the CPU's within the GPU's rounding (fp32), or within the precision asked for (bf16,
fp16). Tiny random models built from configs (tests/support): the sentence-transformers, hf-image
and clip-image encoders. These tests need a GPU: CI has none, and there they skip; a session with a
GPU runs them (the last run's numbers are in the README's Speed section)."""

import numpy as np
import pytest

from extras import needs_extra  # tests/support

torch = needs_extra("torch", "encoders")
needs_extra("transformers", "encoders")
needs_extra("sentence_transformers", "encoders")

from alignbench_plugins.encoders.clip import CLIPImageEncoder  # noqa: E402
from alignbench_plugins.encoders.hf_image import HFImageEncoder  # noqa: E402
from alignbench_plugins.encoders.sentence_transformer import SentenceTransformerEncoder  # noqa: E402
from tiny_encoder_weights import (  # noqa: E402  (tests/support)
    tiny_clip, tiny_sentence_transformer, tiny_vision_backbone,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none")

rng = np.random.default_rng(0)
# 70 items in batches of 32: two full batches and a ragged one.
IMAGES = [rng.integers(0, 255, (int(rng.integers(24, 80)), int(rng.integers(24, 80)), 3), dtype=np.uint8)
          for _ in range(70)]
WORDS = "a man woman dog cat riding bike red bus on the street in park two eating food".split()
CAPTIONS = [" ".join(rng.choice(WORDS, int(rng.integers(2, 14)))) for _ in range(70)]
# Least cosine between a row on the GPU and on the CPU, per precision. Images are resized on the GPU
# there, keeping the fractional pixel values the CPU's uint8 resizing rounds: on these tiny random
# models that alone moved rows by up to 4e-4 in cosine (H100, fp32), so images get at most 0.999.
AGREEMENT = {"fp32": 0.9999, "fp16": 0.999, "bf16": 0.99}
IMAGE_AGREEMENT = 0.999


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-random-models")
    folders = {kind: tiny_vision_backbone(root / kind, kind) for kind in ("vit", "dinov2", "convnext")}
    folders["text"] = tiny_sentence_transformer(root / "text")
    folders["clip-image"] = tiny_clip(root / "clip")
    return folders


def encoder_for(kind, folder, **options):
    if kind == "text":
        return SentenceTransformerEncoder(weights=folder, batch_size=32, **options)
    if kind == "clip-image":
        return CLIPImageEncoder(weights=folder, batch_size=32, **options)
    return HFImageEncoder(weights=folder, pooling="mean", batch_size=32, **options)


def row_cosines(a, b):
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16"])
@pytest.mark.parametrize("kind", ["text", "vit", "dinov2", "convnext", "clip-image"])
def test_the_gpu_gives_the_cpus_embeddings(weights, kind, precision):
    items = CAPTIONS if kind == "text" else IMAGES
    on_cpu = encoder_for(kind, weights[kind], device="cpu").encode(items)
    encoder = encoder_for(kind, weights[kind], device="auto", precision=precision)
    on_gpu = encoder.encode(items)
    assert encoder.device_.type == "cuda"
    assert on_gpu.dtype == np.float32 and on_gpu.shape == on_cpu.shape == (70, encoder.dim)
    cosines = row_cosines(on_gpu, on_cpu)
    norm_ratios = np.linalg.norm(on_gpu, axis=1) / np.linalg.norm(on_cpu, axis=1)
    print(f"{kind} {precision}: least cosine to the CPU's {cosines.min():.6f}, "
          f"largest norm ratio deviation {np.abs(norm_ratios - 1).max():.2e}")
    bound = AGREEMENT[precision] if kind == "text" else min(AGREEMENT[precision], IMAGE_AGREEMENT)
    assert cosines.min() >= bound  # row by row: also that the rows keep their order
    assert encoder.identity()["runs_on"] == "cuda"  # cached apart from the CPU's embeddings


def test_an_explicit_gpu_index_is_used(weights):
    encoder = encoder_for("vit", weights["vit"], device="cuda:0")
    encoder.encode(IMAGES[:3])
    assert encoder.device_ == torch.device("cuda:0")
