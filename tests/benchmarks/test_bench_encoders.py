"""Encoder throughput on this machine's CPU, side by side with the slower alternative.

``python -m pytest tests/benchmarks/test_bench_encoders.py --benchmark-enable``. Targets on 2 cores:
MiniLM >= 300 captions/s; a DINOv2-S-shaped model >= 16 images/s in fp32 (12.25 GFLOP per image:
16 img/s is 196 GFLOP/s, 62% of the measured 316 GFLOP/s float32 matmul peak).
"""

import pytest

from extras import needs_extra  # tests/support

torch = needs_extra("torch", "encoders")
transformers = needs_extra("transformers", "encoders")

from alignbench_plugins.encoders.dinov2 import DINOv2Encoder  # noqa: E402
from alignbench_plugins.encoders.minilm import MiniLMEncoder  # noqa: E402
from caption_fixtures import coco_like_captions  # noqa: E402  (tests/support)

N_CAPTIONS = 512
N_IMAGES = 32


def record_rate(benchmark, key, count):
    """Throughput in extra_info; absent when benchmarks are disabled (the default test run)."""
    if benchmark.stats is not None:
        benchmark.extra_info[key] = count / benchmark.stats.stats.min


@pytest.fixture(scope="module")
def minilm():
    encoder = MiniLMEncoder(device="cpu")
    encoder.encode(["warm up"])
    return encoder


@pytest.mark.benchmark(group=f"MiniLM, {N_CAPTIONS} captions")
def test_minilm_sorted_per_batch_padding(benchmark, minilm):
    captions = coco_like_captions(N_CAPTIONS)
    benchmark.pedantic(minilm.encode, args=(captions,), rounds=3, iterations=1)
    record_rate(benchmark, "captions_per_s", N_CAPTIONS)


@pytest.mark.benchmark(group=f"MiniLM, {N_CAPTIONS} captions")
def test_minilm_padded_to_77_tokens(benchmark, minilm):
    """The CLIP-style alternative: every caption padded to 77 tokens."""
    captions = coco_like_captions(N_CAPTIONS)
    model, tokenizer = minilm.model[0].auto_model, minilm.model.tokenizer

    def encode():
        with torch.inference_mode():
            for start in range(0, N_CAPTIONS, 64):
                batch = tokenizer(captions[start:start + 64], padding="max_length", max_length=77,
                                  truncation=True, return_tensors="pt")
                model(**batch)

    benchmark.pedantic(encode, rounds=3, iterations=1)
    record_rate(benchmark, "captions_per_s", N_CAPTIONS)


def dinov2_small_shaped(attention):
    torch.manual_seed(0)
    config = transformers.Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                       intermediate_size=1536, patch_size=14, image_size=224)
    config._attn_implementation = attention
    return transformers.Dinov2Model(config).eval()


@pytest.mark.benchmark(group=f"DINOv2-S-shaped forward, {N_IMAGES} images of 224 px, fp32")
@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_dinov2_small_forward(benchmark, attention):
    model = dinov2_small_shaped(attention)
    pixels = torch.randn(N_IMAGES, 3, 224, 224)

    def forward():
        with torch.inference_mode():
            for start in range(0, N_IMAGES, 8):
                model(pixel_values=pixels[start:start + 8])

    forward()
    benchmark.pedantic(forward, rounds=2, iterations=1)
    record_rate(benchmark, "images_per_s", N_IMAGES)


def test_dinov2_encoder_uses_sdpa(tmp_path):
    dinov2_small_shaped("sdpa").save_pretrained(tmp_path)
    assert DINOv2Encoder(weights=str(tmp_path), device="cpu").model.config._attn_implementation == "sdpa"


@pytest.mark.benchmark(group="float32 matmul, 2048 x 2048 (the machine's reference rate)")
def test_float32_matmul_rate(benchmark):
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    benchmark.pedantic(lambda: a @ b, rounds=5, iterations=2, warmup_rounds=1)
    record_rate(benchmark, "gflop_per_s", 2 * 2048 ** 3 / 1e9)
