"""Images are prepared for the model in slices of the batch on several threads: the pixels are the
ones a single pass over the batch gives, bit for bit and in order, and a bad image is still one line."""

import threading

import numpy as np
import pytest

from extras import needs_extra  # tests/support

torch = needs_extra("torch", "encoders")
transformers = needs_extra("transformers", "encoders")

from alignbench.errors import InvalidInputError  # noqa: E402
from alignbench_plugins.encoders.images import (  # noqa: E402
    IMAGENET_MEAN, IMAGENET_STD, INCEPTION_MEAN, INCEPTION_STD, _imagenet_pixels, imagenet_tensor, in_slices,
    processor_pixels, to_rgb,
)

rng = np.random.default_rng(0)
IMAGES = [rng.integers(0, 255, (int(rng.integers(20, 90)), int(rng.integers(20, 90)), 3), dtype=np.uint8)
          for _ in range(37)]


def test_slices_come_back_in_order_from_as_many_threads_as_asked():
    started = threading.Barrier(4, timeout=10)

    def convert(part):
        started.wait()  # returns only once four slices are being converted at the same time
        return list(part)

    parts = in_slices(list(range(37)), convert, threads=4)
    assert len(parts) == 4 and sum(parts, []) == list(range(37))
    started = threading.Barrier(1)
    assert in_slices(list(range(37)), convert, threads=1) == [list(range(37))]
    # Fewer than two slices' worth of items is one call, whatever the threads.
    assert in_slices([1, 2, 3, 4, 5], convert, threads=8) == [[1, 2, 3, 4, 5]]


def test_the_default_follows_torchs_thread_limit(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # a worker process limited to one thread
    assert len(in_slices(list(range(100)), list)) == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    assert len(in_slices(list(range(100)), list)) == 3


def test_imagenet_pixels_in_threads_are_the_one_by_one_pixels(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    together = imagenet_tensor(IMAGES, size=32, resize=40)
    mean, std = np.asarray(IMAGENET_MEAN), np.asarray(IMAGENET_STD)
    one_by_one = np.stack([_imagenet_pixels(image, 32, 40, mean, std) for image in IMAGES]).astype(np.float32)
    assert together.dtype == torch.float32
    np.testing.assert_array_equal(together.numpy(), one_by_one)


@pytest.mark.parametrize("value", [0, 127, 128, 200, 255])
def test_pixels_are_scaled_by_the_formula_of_each_convention(value):
    """A flat grey image stays flat through resizing and cropping; its pixels are then ImageNet's
    ``(v / 255 - mean) / std`` per channel, or the TF edge models' ``(v - 127) / 128``."""
    grey = np.full((50, 70, 3), value, dtype=np.uint8)
    imagenet = imagenet_tensor([grey], size=32, resize=40).numpy()[0]
    expected = (value / 255 - np.asarray(IMAGENET_MEAN)) / np.asarray(IMAGENET_STD)
    np.testing.assert_allclose(imagenet, np.broadcast_to(expected[:, None, None], imagenet.shape), rtol=1e-6, atol=1e-6)
    inception = imagenet_tensor([grey], size=32, resize=40, mean=INCEPTION_MEAN, std=INCEPTION_STD).numpy()[0]
    np.testing.assert_allclose(inception, np.full(inception.shape, (value - 127) / 128), rtol=0, atol=1e-6)


def test_processor_pixels_in_threads_are_the_processors_own_for_the_whole_batch(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    processor = transformers.ViTImageProcessor(size={"height": 32, "width": 32})
    theirs = processor(images=[to_rgb(i) for i in IMAGES], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(processor_pixels(processor, IMAGES), theirs, rtol=0, atol=0)


def test_an_unreadable_image_in_any_slice_is_one_line_naming_it(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    items = list(IMAGES)
    items[30] = b"not an image at all"
    with pytest.raises(InvalidInputError, match="an image of 19 bytes is not a readable image"):
        imagenet_tensor(items, size=32, resize=40)


def test_for_a_gpu_a_torchvision_backed_processor_gets_every_decoded_image_and_the_device(monkeypatch):
    from alignbench_plugins.encoders import images

    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    monkeypatch.setattr(images, "resizes_on_device", lambda processor: True)
    calls = []

    def processor(images, return_tensors, device=None):
        calls.append((device, [image.size for image in images], [image.mode for image in images]))
        return {"pixel_values": torch.zeros(len(images), 3, 2, 2)}

    gpu = torch.device("cuda")
    assert processor_pixels(processor, IMAGES, gpu).shape == (37, 3, 2, 2)
    assert [device for device, _, _ in calls] == [gpu] * 4  # one call per slice, each told the device
    assert sorted(size for _, sizes, _ in calls for size in sizes) == sorted((i.shape[1], i.shape[0]) for i in IMAGES)
    assert {mode for _, _, modes in calls for mode in modes} == {"RGB"}
    calls.clear()
    processor_pixels(processor, IMAGES, torch.device("cpu"))  # on the CPU: slices, no device
    assert [device for device, _, _ in calls] == [None] * 4 and sum(len(sizes) for _, sizes, _ in calls) == 37


def test_only_a_torchvision_backed_processor_is_handed_a_device():
    import importlib.util

    from alignbench_plugins.encoders.images import resizes_on_device

    processor = transformers.ViTImageProcessor(size={"height": 32, "width": 32})
    if int(transformers.__version__.split(".")[0]) >= 5:  # its default backend: torchvision where installed, else PIL
        assert resizes_on_device(processor) == (importlib.util.find_spec("torchvision") is not None)
    assert not resizes_on_device(object())


def test_a_processor_that_pads_to_its_largest_image_gets_the_whole_batch_in_one_call(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    calls = []

    def padding_processor(images, return_tensors):
        calls.append(len(images))
        width = max(image.size[0] for image in images)
        return {"pixel_values": torch.stack([torch.full((3, 2, width), float(image.size[0])) for image in images])}

    pixels = processor_pixels(padding_processor, IMAGES)
    assert calls[-1] == len(IMAGES) and len(calls) == 5  # four slices, then the batch at once
    torch.testing.assert_close(pixels, padding_processor([to_rgb(i) for i in IMAGES], "pt")["pixel_values"])


def test_sixteen_bit_images_are_scaled_not_clipped_to_white(tmp_path):
    """A 16-bit greyscale image (an array, or a PNG in PIL's "I;16" mode) is scaled from its full range:
    v * 255 / 65535 = v / 257, rounded; PIL's own conversion would make every value above 255 white."""
    from PIL import Image

    grey = (np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16)
    expected = np.round(grey / 257).astype(np.uint8)
    from_array = np.asarray(to_rgb(grey))
    assert from_array.shape == (64, 64, 3) and (from_array == expected[:, :, None]).all()
    Image.fromarray(grey).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    np.testing.assert_array_equal(np.asarray(to_rgb(tmp_path / "deep.png")), from_array)
    np.testing.assert_array_equal(np.asarray(to_rgb((tmp_path / "deep.png").read_bytes())), from_array)
    # Every value is read the same way, whatever the image's own largest: a dark 16-bit image stays dark.
    dark = np.arange(300, dtype=np.uint16).reshape(15, 20)
    np.testing.assert_array_equal(np.asarray(to_rgb(dark))[:, :, 0], np.round(dark / 257).astype(np.uint8))
    # The same values in other integer types, and a 16-bit PGM (PIL's "I" mode), read alike.
    for kind in (np.int32, np.uint32, np.int64):
        np.testing.assert_array_equal(np.asarray(to_rgb(grey.astype(kind))), from_array)
    Image.fromarray(grey).save(tmp_path / "deep.pgm")
    assert Image.open(tmp_path / "deep.pgm").mode.startswith("I")
    np.testing.assert_array_equal(np.asarray(to_rgb(tmp_path / "deep.pgm")), from_array)


def test_a_single_channel_axis_is_greyscale():
    grey = np.random.default_rng(1).integers(0, 256, (12, 9), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(to_rgb(grey[:, :, None])), np.asarray(to_rgb(grey)))
