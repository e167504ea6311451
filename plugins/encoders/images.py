"""Image inputs: PIL images, arrays (H x W grayscale or H x W x 3 uint8), file paths, encoded image
bytes (a JPEG or PNG file's content) or anything with ``read_bytes()`` (a ``pathlib.Path``, an image
inside a tar shard or an Arrow table, read when it is encoded)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from alignbench.errors import InvalidInputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_rgb(item: Any):
    """A PIL RGB image from any supported item (paths are opened lazily, one at a time). A file or
    bytes that are no readable image are an InvalidInputError naming the item."""
    from PIL import Image

    if isinstance(item, (str, Path)):
        try:
            with Image.open(item) as image:
                return _rgb(image)
        except OSError as exc:  # PIL's UnidentifiedImageError, a truncated file, a vanished one
            raise InvalidInputError(f"{item} is not a readable image ({exc}); remove it from the dataset or "
                                    f"replace it with a valid image file.") from None
    if isinstance(item, (bytes, bytearray, memoryview)) or callable(getattr(item, "read_bytes", None)):
        import io

        data = item if isinstance(item, (bytes, bytearray, memoryview)) else item.read_bytes()
        try:
            with Image.open(io.BytesIO(data)) as image:
                return _rgb(image)
        except OSError as exc:
            raw = isinstance(item, (bytes, bytearray, memoryview))
            where = f"an image of {len(data)} bytes" if raw else repr(item)
            raise InvalidInputError(f"{where} is not a readable image ({exc}); remove it from the dataset or "
                                    f"replace it with a valid image.") from None
    if isinstance(item, np.ndarray):
        return _from_array(item)
    return _rgb(item)


def as_uint8(array: np.ndarray) -> np.ndarray:
    """An H x W or H x W x 3 (or 4) uint8 array from an image array. H x W x 1 loses its last axis.
    Integers wider than 8 bits are 16-bit images (PNG, PGM, TIFF): scaled from 0-65535 (v / 257,
    rounded; negatives are 0), or from their type's full range where a value exceeds 65535; every
    value is read the same way, whatever the image's own largest. Other arrays in [0, 1] are scaled
    by 255, the rest clipped to [0, 255]."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.integer) and array.dtype.itemsize > 1:
        top = 65535 if not array.size or array.max() <= 65535 else np.iinfo(array.dtype).max
        return np.round(np.clip(array, 0, None) * (255 / top)).astype(np.uint8)
    return np.clip(array * (255.0 if array.max(initial=0) <= 1.0 else 1.0), 0, 255).astype(np.uint8)


def _rgb(image):
    """A PIL image as RGB. Integer and float modes ("I;16" PNGs, "I" 16-bit PGMs, "F") are read as
    arrays (see :func:`as_uint8`): PIL's own conversion would clip every value above 255 to white."""
    if image.mode.startswith("I") or image.mode == "F":
        return _from_array(np.asarray(image))
    return image.convert("RGB")


def _from_array(array: np.ndarray):
    from PIL import Image

    return Image.fromarray(as_uint8(array)).convert("RGB")


# The TF "edge" models (EfficientNet-Lite) were trained on inputs scaled inception-style, (x - 127) / 128
# of the 0-255 value, for their quantized forms: the TF builder's MEAN_RGB and STDDEV_RGB, in [0, 1] units.
INCEPTION_MEAN = (127 / 255,) * 3
INCEPTION_STD = (128 / 255,) * 3


def imagenet_tensor(items: list, size: int = 224, resize: int = 256, mean: tuple[float, ...] = IMAGENET_MEAN,
                    std: tuple[float, ...] = IMAGENET_STD):
    """Resize the shorter side to ``resize``, centre-crop ``size``, scale to [0, 1], normalize by the
    channels' ``mean`` and ``std`` (default ImageNet's): ``(n, 3, size, size)`` float32 (slices of
    the batch in threads, see :func:`in_slices`)."""
    import torch

    out = np.empty((len(items), 3, size, size), dtype=np.float32)
    mean, std = np.asarray(mean, np.float64), np.asarray(std, np.float64)  # as the tuples always were

    def fill(part: range) -> None:
        for i in part:
            out[i] = _imagenet_pixels(items[i], size, resize, mean, std)

    in_slices(range(len(items)), fill)
    return torch.from_numpy(out)


def _imagenet_pixels(item: Any, size: int, resize: int, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    from PIL import Image

    image = to_rgb(item)
    w, h = image.size
    scale = resize / min(w, h)
    image = image.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BICUBIC)
    w, h = image.size
    left, top = (w - size) // 2, (h - size) // 2
    array = np.asarray(image.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    return ((array - mean) / std).transpose(2, 0, 1)


def processor_pixels(processor: Any, items: list, device: Any = None):
    """A transformers image processor's ``pixel_values`` for ``items``, ``(n, 3, h, w)``: slices of
    the batch are decoded and processed in threads (:func:`in_slices`) and concatenated. Processors
    that resize or crop to one size process each image on its own, so the pixels are those of one
    call on the whole batch; one that pads to the largest image of its input gives slices of other
    sizes, and the whole batch is then processed in one call.

    On a GPU ``device``, a torchvision-backed processor resizes and normalizes there (its ``device``
    option): on an H100 the end-to-end encoder went from 394 to 818 images a second this way."""
    import torch

    on_device = device is not None and torch.device(device).type != "cpu" and resizes_on_device(processor)
    options = {"device": device} if on_device else {}

    def pixels(part: list):
        return processor(images=[to_rgb(i) for i in part], return_tensors="pt", **options)["pixel_values"]

    parts = in_slices(items, pixels)
    if len({tuple(part.shape[1:]) for part in parts}) > 1:
        return pixels(items)
    return torch.cat(parts)


def resizes_on_device(processor: Any) -> bool:
    """Whether a transformers image processor is torchvision-backed (``BaseImageProcessorFast``),
    the kind that takes a ``device`` to work on."""
    try:
        from transformers.image_processing_utils_fast import BaseImageProcessorFast
    except ImportError:
        return False
    return isinstance(processor, BaseImageProcessorFast)


# Fewer images than this per slice are not worth a thread.
MIN_SLICE = 4


def in_slices(items: Sequence[Any], convert: Callable[[Any], Any], threads: int | None = None) -> list:
    """``[convert(part) for part in slices of items]``, in order, the slices converted at once in up to
    ``threads`` Python threads (default: as many as torch may use, so a worker limited to one gets one).

    Decoding, resizing and normalizing a batch ran on one core while the model waited: on an H100 a
    DINOv2-S forward in bf16 ran 25-45 times faster than one core prepared COCO-sized images for it.
    PIL and numpy release the GIL while they work (on 2 cores, two threads prepared images 1.2-2
    times as fast as one)."""
    if threads is None:
        import torch

        threads = max(1, min(torch.get_num_threads(), 16))
    count = max(1, min(threads, len(items) // MIN_SLICE))
    if count == 1:
        return [convert(items)]
    size = -(-len(items) // count)
    parts = [items[start:start + size] for start in range(0, len(items), size)]
    with ThreadPoolExecutor(len(parts), thread_name_prefix="alignbench-images") as pool:
        return list(pool.map(convert, parts))


def check_image_items(items: Sequence[Any], encoder: str) -> None:
    """InvalidInputError, naming the modality, for items that cannot be images: text that is not an
    image file's path (captions handed to an image encoder), numbers, None."""
    from PIL import Image

    for i, item in enumerate(items):
        if isinstance(item, str):
            if not Path(item).is_file():
                raise InvalidInputError(
                    f"{encoder} encodes images, but item {i} is text that names no image file ({item[:60]!r}); "
                    f"pass images (arrays, PIL images, image files or bytes) or choose a text encoder.")
        elif not (isinstance(item, (np.ndarray, Path, bytes, bytearray, memoryview, Image.Image))
                  or callable(getattr(item, "read_bytes", None))):
            raise InvalidInputError(
                f"{encoder} encodes images, but item {i} is a {type(item).__name__}; pass images (arrays, PIL "
                f"images, image files or bytes).")
        elif isinstance(item, np.ndarray) and not (item.ndim == 2 or (item.ndim == 3 and item.shape[2] in (1, 3, 4))):
            raise InvalidInputError(
                f"{encoder} encodes images, but item {i} is an array of shape {item.shape}; an image is H x W "
                f"(grey) or H x W x 3 (RGB).")
