"""An image encoder on a CUDA GPU, beside the GPU's own matrix-product rate measured in the same run.

A DINOv2-S/14-shaped ``hf-image`` model (random weights from its config: 384-d, 12 layers, 6 heads,
224 px, 257 tokens) in bf16 and fp32, batch 256, on COCO-sized images (480 x 640): images per
second through the encoder (images decoded in threads, the checkpoint's image processor on the GPU,
then the model), through the image processor alone (so, and on the CPU in threads and in one) and through
the model alone on pixels already on the GPU, the model's FLOPs per image (torch's FlopCounterMode)
and so the fraction of the measured product rate it reaches. Needs a GPU: it skips elsewhere (CI
has none); ``python -m pytest tests/benchmarks/test_bench_gpu_encoders.py --benchmark-enable -s``
prints the figures.
"""

import time

import numpy as np
import pytest

from extras import needs_extra  # tests/support

torch = needs_extra("torch", "encoders")
transformers = needs_extra("transformers", "encoders")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from alignbench_plugins.encoders.hf_image import HFImageEncoder  # noqa: E402
from alignbench_plugins.encoders.images import processor_pixels  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU; this machine has none")

DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32}


@pytest.fixture(scope="module")
def dinov2_small(tmp_path_factory):
    path = tmp_path_factory.mktemp("dinov2-small-shaped")
    torch.manual_seed(0)
    config = transformers.Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                       intermediate_size=1536, patch_size=14, image_size=224)
    transformers.Dinov2Model(config).save_pretrained(path)
    transformers.BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                                   do_convert_rgb=True).save_pretrained(path)
    return str(path)


def seconds(step, repeats: int) -> float:
    step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - started) / repeats


def product_rate(dtype, n: int = 8192) -> float:
    """FLOP/s of one n x n x n product on the GPU."""
    a, b = (torch.randn(n, n, device="cuda", dtype=dtype) for _ in range(2))
    return 2 * n ** 3 / seconds(lambda: a @ b, 10)


@pytest.mark.benchmark(group="hf-image on a GPU")
@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_dinov2_small_shaped_on_the_gpu_against_its_product_rate(benchmark, dinov2_small, precision):
    rng = np.random.default_rng(0)
    n_images = 64 if benchmark.disabled else 1024
    images = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(n_images)]
    encoder = HFImageEncoder(weights=dinov2_small, pooling="cls", device="cuda", precision=precision, batch_size=256)
    encoder.encode(images[:8])  # load and warm up
    started = time.perf_counter()
    embeddings = encoder.encode(images)
    torch.cuda.synchronize()
    end_to_end = n_images / (time.perf_counter() - started)
    assert embeddings.shape == (n_images, 384) and np.isfinite(embeddings).all()

    batch = images[:256]
    started = time.perf_counter()
    encoder._processor(images=batch, return_tensors="pt")
    one_thread = len(batch) / (time.perf_counter() - started)
    started = time.perf_counter()
    processor_pixels(encoder._processor, batch)
    in_threads = len(batch) / (time.perf_counter() - started)
    started = time.perf_counter()
    pixels = processor_pixels(encoder._processor, batch, "cuda")
    torch.cuda.synchronize()
    processing = len(batch) / (time.perf_counter() - started)
    pixels = pixels.to("cuda", DTYPES[precision])
    model = encoder.model
    with torch.inference_mode():
        model_only = len(batch) / seconds(lambda: model(pixel_values=pixels), 10)
        with FlopCounterMode(display=False) as counter:
            model(pixel_values=pixels)
    flops_per_image = counter.get_total_flops() / len(batch)
    rate = product_rate(DTYPES[precision])
    fraction = model_only * flops_per_image / rate
    print(f"\n{torch.cuda.get_device_name()} {precision}: encoder {end_to_end:.0f} images/s end to end; "
          f"image processor alone {processing:.0f} images/s (decoding in threads, the rest on the GPU); on the "
          f"CPU {in_threads:.0f} in {torch.get_num_threads()} threads, {one_thread:.0f} in one; model alone {model_only:.0f} images/s "
          f"= {model_only * flops_per_image / 1e12:.1f} TFLOP/s ({flops_per_image / 1e9:.2f} GFLOP an image), "
          f"{100 * fraction:.0f}% of the {rate / 1e12:.0f} TFLOP/s of an 8192^3 product in the same run")
    benchmark.extra_info.update(end_to_end_images_s=end_to_end, processor_images_s=processing,
                                processor_cpu_threads_images_s=in_threads, processor_one_thread_images_s=one_thread,
                                model_images_s=model_only, gflop_per_image=flops_per_image / 1e9,
                                product_tflop_s=rate / 1e12, fraction_of_product_rate=fraction)
    benchmark.pedantic(encoder.encode, args=(images[:256],), rounds=1, iterations=1)
