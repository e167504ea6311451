"""DINOv2 (Oquab et al. 2023) through transformers, from the hub or a local directory."""

from __future__ import annotations

from typing import Literal

from alignbench.errors import InvalidParameterError

from .base import Precision, TorchEncoder, missing_weights
from .images import processor_pixels
from .runtime import require

HUB_IDS = {"small": "facebook/dinov2-small", "base": "facebook/dinov2-base",
           "large": "facebook/dinov2-large", "giant": "facebook/dinov2-giant"}


class DINOv2Encoder(TorchEncoder):
    """DINOv2 ViT features with the official preprocessing (the checkpoint's image processor:
    resize 256, centre-crop 224, ImageNet normalization).

    ``pooling``: ``cls`` (the class token, the seed paper's choice), ``mean`` (mean of the patch
    tokens) or ``cls+mean`` (both, concatenated: twice the width). ``weights``: a local directory made
    by ``save_pretrained``; default: the hub id for ``size`` (needs a network or a filled HF cache).
    Attention runs through PyTorch SDPA.
    """

    name = "dinov2"
    description = "DINOv2 image features"
    modality = "image"
    version = "2"  # 2: 16-bit and one-channel images read from their full range (plugins/encoders/images.py)
    requires = ("torch", "transformers")
    # With torchvision installed, transformers prepares images with its fast processors: other pixels.
    libraries = ("torch", "transformers", "torchvision", "pillow")

    def __init__(self, size: Literal["small", "base", "large", "giant"] = "small",
                 pooling: Literal["cls", "mean", "cls+mean"] = "cls", weights: str | None = None,
                 device: str = "auto", batch_size: int = 8, precision: Precision = "fp32",
                 normalize: bool = False):
        super().__init__(weights, device, batch_size, precision, normalize)
        self.size = size
        self.pooling = pooling

    def default_weights(self) -> str:
        return HUB_IDS[self.size]

    def output_width(self, model) -> int:
        width = model.config.hidden_size
        return 2 * width if self.pooling == "cls+mean" else width

    def load_model(self):
        transformers = require("transformers")
        source = self.weights_source()
        try:
            # The config's own model_type, where it names one (a config.json without it still loads).
            model_type = transformers.PretrainedConfig.get_config_dict(source)[0].get("model_type", "dinov2")
            if model_type != "dinov2":
                # Dinov2Model would load such a checkpoint with a warning and without its extra tokens
                # (DINOv2 with registers runs without its register tokens): other features, silently.
                raise InvalidParameterError(
                    f"dinov2: {source} holds a {model_type!r} model, not DINOv2; encode it with "
                    f"--image-encoder hf-image --param hf-image.weights={source} (it skips register tokens).")
            model = transformers.Dinov2Model.from_pretrained(source, attn_implementation="sdpa")
        except (OSError, ValueError) as exc:
            if isinstance(exc, InvalidParameterError):
                raise
            raise missing_weights("DINOv2", source, exc,
                                  "No package ships them: pass --param dinov2.weights=/path/to/dir (a "
                                  "Dinov2Model.save_pretrained directory), or run where the Hugging Face hub is "
                                  "reachable.") from None
        try:
            self._processor = transformers.AutoImageProcessor.from_pretrained(source)
        except (OSError, ValueError):
            # A weights-only directory: DINOv2's published preprocessing.
            self._processor = transformers.BitImageProcessor(
                size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}, do_center_crop=True,
                image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
        return model

    def features(self, model, batch):
        torch = require("torch")
        pixels = processor_pixels(self._processor, batch, self.device_)
        tokens = model(pixel_values=pixels.to(self.device_, self.dtype_)).last_hidden_state
        cls, patches = tokens[:, 0], tokens[:, 1:].mean(dim=1)
        return {"cls": cls, "mean": patches, "cls+mean": torch.cat([cls, patches], dim=1)}[self.pooling]
