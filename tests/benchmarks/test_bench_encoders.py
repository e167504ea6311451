"""Encoder throughput on this machine's CPU, side by side with the slower alternative.

``python -m pytest tests/benchmarks/test_bench_encoders.py --benchmark-enable``. Targets on 2 cores:
MiniLM >= 300 captions/s; a DINOv2-S-shaped model >= 16 images/s in fp32 (12.25 GFLOP per image:
16 img/s is 196 GFLOP/s, 62% of the measured 316 GFLOP/s float32 matmul peak); EfficientNet-Lite0
(the default image encoder) at >= 40% of the float32 matmul rate measured in the same run.
"""

import time

import numpy as np
import pytest

from extras import needs_extra  # tests/support

torch = needs_extra("torch", "encoders")
transformers = needs_extra("transformers", "encoders")

from alignbench_plugins.encoders.dinov2 import DINOv2Encoder  # noqa: E402
from alignbench_plugins.encoders.efficientnet import EfficientNetLite0Encoder  # noqa: E402
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
def test_minilm_grouped_by_length_unpadded(benchmark, minilm):
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


@pytest.mark.benchmark(group="MiniLM against sentence-transformers' default loop and the float32 matmul rate")
def test_minilm_against_sentence_transformers_default_loop_and_the_matmul_rate(benchmark, minilm):
    """alignbench's MiniLM (texts grouped by length in tokens, no batch padded; batches of 64) and
    sentence-transformers' own ``encode`` (padded per batch) at its default batch of 32 and at
    alignbench's 64, alternating with the 2048^2 matmul in one run, on the same loaded model. The
    FLOPs per caption are torch's own count (FlopCounterMode) of the unpadded forward, so each loop's
    share of the matmul rate counts useful work only; ``needed_for_1_3x`` is the share that 1.3x the
    library's default loop would need."""
    from torch.utils.flop_counter import FlopCounterMode

    n_captions, rounds = (16, 1) if benchmark.disabled else (4000, 3)
    captions = coco_like_captions(n_captions)
    with FlopCounterMode(display=False) as counter:
        ours = minilm.encode(captions)
    gflop = counter.get_total_flops() / 1e9 / n_captions

    def library(batch_size=32):
        return minilm.model.encode(captions, batch_size=batch_size, convert_to_numpy=True, show_progress_bar=False)

    def rate(encode):
        started = time.perf_counter()
        encode()
        return n_captions / (time.perf_counter() - started)

    rates = {"matmul": [], "alignbench": [], "library": [], "library_64": []}
    for _ in range(rounds):  # alternating, so that all see the same load
        rates["matmul"].append(matmul_gflop_per_s())
        rates["alignbench"].append(rate(lambda: minilm.encode(captions)))
        rates["library"].append(rate(library))
        rates["library_64"].append(rate(lambda: library(minilm.batch_size)))
    np.testing.assert_allclose(ours, library(), rtol=0, atol=1e-5)
    best = {key: max(values) for key, values in rates.items()}
    share = {key: best[key] * gflop / best["matmul"] for key in ("alignbench", "library", "library_64")}
    benchmark.extra_info.update(gflop_per_caption=gflop, ratio=best["alignbench"] / best["library"],
                                ratio_same_batch=best["alignbench"] / best["library_64"],
                                needed_for_1_3x=1.3 * share["library"],
                                **{f"{key}_per_s": value for key, value in best.items()},
                                **{f"{key}_share_of_matmul_rate": value for key, value in share.items()})
    print(f"\nMiniLM on {n_captions} COCO-like captions ({gflop:.3f} GFLOP each, unpadded): alignbench "
          f"{best['alignbench']:.0f} captions/s; sentence-transformers' loop {best['library']:.0f} at its default "
          f"batch of 32 ({best['alignbench'] / best['library']:.2f}x), {best['library_64']:.0f} at 64 "
          f"({best['alignbench'] / best['library_64']:.2f}x); float32 matmul {best['matmul']:.0f} GFLOP/s, of which "
          f"alignbench does {share['alignbench']:.0%}, the library {share['library']:.0%} (batch 32) and "
          f"{share['library_64']:.0%} (64) as useful work (1.3x the default loop would need {1.3 * share['library']:.0%})")
    benchmark.pedantic(minilm.encode, args=(captions,), rounds=1, iterations=1)


@pytest.mark.benchmark(group="float32 matmul, 2048 x 2048 (the machine's reference rate)")
def test_float32_matmul_rate(benchmark):
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    benchmark.pedantic(lambda: a @ b, rounds=5, iterations=2, warmup_rounds=1)
    record_rate(benchmark, "gflop_per_s", 2 * 2048 ** 3 / 1e9)


def matmul_gflop_per_s(size=2048, repeats=4):
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    started = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return repeats * 2 * size ** 3 / 1e9 / (time.perf_counter() - started)


def efficientnet_gflop_per_image(model):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model.extract_features(torch.randn(1, 3, 224, 224))
    return counter.get_total_flops() / 1e9


def images_of(shape, n, seed=0):
    """uint8 arrays: 28 x 28 grayscale (the default sweep's Fashion-MNIST) or 480 x 640 x 3 (COCO's
    size; smooth, so that resizing sees photo-like content). Already decoded: JPEG decoding is not timed."""
    rng = np.random.default_rng(seed)
    if len(shape) == 2:
        return list(rng.integers(0, 256, (n, *shape), dtype=np.uint8))
    grid = np.linspace(0, 1, shape[0])[:, None, None] * np.linspace(0, 1, shape[1])[None, :, None]
    return [np.uint8(255 * np.clip(grid * rng.uniform(0.5, 1, 3) + rng.uniform(0, 0.2, shape), 0, 1))
            for _ in range(n)]


@pytest.mark.benchmark(group="EfficientNet-Lite0, batch 4 vs 32, against the float32 matmul rate")
@pytest.mark.parametrize("shape", [(28, 28), (480, 640, 3)], ids=["28x28", "480x640"])
def test_efficientnet_batch_of_4_against_32_and_the_matmul_rate(benchmark, shape):
    """The model alone and the encoder end to end (the images prepared to 224 px), batches of 4
    and 32 alternating with the 2048^2 matmul in one run; the FLOPs per image are torch's own count
    (FlopCounterMode, 2 per multiply-add). The two batch sizes must give the same rows. In one
    process the batches of 32 leave glibc's heap ready for those of 4: the test below times each
    configuration in a process of its own, as a sweep runs it."""
    needs_extra("efficientnet_lite_pytorch", "encoders")
    small = EfficientNetLite0Encoder(device="cpu")
    large = EfficientNetLite0Encoder(device="cpu", batch_size=32)
    model = small.model
    n_images, rounds = (8, 1) if benchmark.disabled else (64, 3)
    images = images_of(shape, n_images)
    pixels = torch.randn(n_images, 3, 224, 224).contiguous(memory_format=torch.channels_last)
    gflop = efficientnet_gflop_per_image(model)

    def model_rate(batch):
        with torch.inference_mode():
            started = time.perf_counter()
            for start in range(0, n_images, batch):
                model.extract_features(pixels[start:start + batch])
            return n_images / (time.perf_counter() - started)

    def encode_rate(encoder):
        started = time.perf_counter()
        rows = encoder.encode(images)
        return n_images / (time.perf_counter() - started), rows

    rates = {key: [] for key in ("matmul", "model_4", "model_32", "encode_4", "encode_32")}
    model_rate(4)
    for _ in range(rounds):  # alternating, so that all see the same load
        rates["matmul"].append(matmul_gflop_per_s())
        rates["model_4"].append(model_rate(4))
        rates["model_32"].append(model_rate(32))
        rate, rows_small = encode_rate(small)
        rates["encode_4"].append(rate)
        rate, rows_large = encode_rate(large)
        rates["encode_32"].append(rate)
    np.testing.assert_allclose(rows_small, rows_large, rtol=0, atol=1e-5)
    best = {key: max(values) for key, values in rates.items()}
    share = best["model_4"] * gflop / best["matmul"]
    benchmark.extra_info.update(gflop_per_image=gflop, share_of_matmul_rate=share,
                                **{f"{key}_per_s": value for key, value in best.items()})
    print(f"\nEfficientNet-Lite0 ({gflop:.3f} GFLOP an image), {shape}: model {best['model_4']:.0f} images/s at "
          f"batch 4, {best['model_32']:.0f} at batch 32 ({best['model_4'] / best['model_32']:.2f}x); encoder end to "
          f"end {best['encode_4']:.0f} vs {best['encode_32']:.0f} images/s ({best['encode_4'] / best['encode_32']:.2f}x); "
          f"float32 matmul {best['matmul']:.0f} GFLOP/s, the model at batch 4 {share:.0%} of it")
    benchmark.pedantic(model_rate, args=(4,), rounds=1, iterations=1)


FRESH_PROCESS_ENCODING = """
import sys, time
from contextlib import nullcontext
import numpy as np
from alignbench_plugins.encoders import base
from alignbench_plugins.encoders.efficientnet import EfficientNetLite0Encoder
heap, batch, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if heap == "default":
    base.heap_kept = lambda: nullcontext(False)
images = list(np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8))
encoder = EfficientNetLite0Encoder(device="cpu", batch_size=batch)
encoder.encode(images[:4])
started = time.perf_counter()
encoder.encode(images)
print(n / (time.perf_counter() - started))
"""


@pytest.mark.benchmark(group="EfficientNet-Lite0 encoding in a fresh process: batch size and heap")
def test_efficientnet_encoding_in_a_fresh_process_with_and_without_the_heap_kept(benchmark):
    """How a sweep encodes: a new process, one batch size throughout. glibc's heap behaves by what
    it has seen (a batch of 32 earlier in the process makes batches of 4 faster), so each
    configuration runs in a process of its own, alternating: batch 32 and glibc's default heap (the
    encoder before), batch 4 with the default heap, batch 4 with the heap kept (now)."""
    import subprocess
    import sys

    needs_extra("efficientnet_lite_pytorch", "encoders")
    configurations = {"batch 32, default heap": ("default", 32), "batch 4, default heap": ("default", 4),
                      "batch 4, heap kept": ("kept", 4)}
    n_images, rounds = (8, 1) if benchmark.disabled else (256, 3)
    if benchmark.disabled:  # the smoke run: one process is enough to show the script works
        configurations = {name: configurations[name] for name in ("batch 4, heap kept",)}
    rates = {name: [] for name in configurations}
    for _ in range(rounds):
        for name, (heap, batch) in configurations.items():
            done = subprocess.run([sys.executable, "-c", FRESH_PROCESS_ENCODING, heap, str(batch), str(n_images)],
                                  capture_output=True, text=True, check=True)
            rates[name].append(float(done.stdout.split()[-1]))
    best = {name: max(values) for name, values in rates.items()}
    assert all(value > 0 for value in best.values())
    benchmark.extra_info.update({f"{name} images_per_s": value for name, value in best.items()})
    print("\nEfficientNet-Lite0 encoding 28 x 28 images, fresh processes, best of "
          f"{rounds}: " + ", ".join(f"{name} {value:.0f} images/s" for name, value in best.items()))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
