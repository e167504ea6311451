"""DINOv2 (Oquab et al. 2023) through transformers, from the hub or a local directory."""

from __future__ import annotations

from typing import Literal


from alignbench import Encoder

from .images import to_rgb
from .runtime import EncoderUnavailableError, encode_in_batches, place, require, versions, weights_identity

HUB_IDS = {"small": "facebook/dinov2-small", "base": "facebook/dinov2-base",
           "large": "facebook/dinov2-large", "giant": "facebook/dinov2-giant"}


class DINOv2Encoder(Encoder):
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

    def __init__(self, size: Literal["small", "base", "large", "giant"] = "small",
                 pooling: Literal["cls", "mean", "cls+mean"] = "cls", weights: str | None = None,
                 device: str = "auto", batch_size: int = 8, precision: Literal["fp32", "fp16", "bf16"] = "fp32",
                 normalize: bool = False):
        self.size = size
        self.pooling = pooling
        self.weights = weights
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self.normalize = normalize

    @property
    def dim(self) -> int:
        width = self.model.config.hidden_size
        return 2 * width if self.pooling == "cls+mean" else width

    def identity(self):
        return {**super().identity(), "weights": weights_identity(self.weights or HUB_IDS[self.size]),
                "libraries": versions(["torch", "transformers", "pillow"])}

    @property
    def model(self):
        if getattr(self, "_model", None) is None:
            require("torch")
            transformers = require("transformers")
            source = self.weights or HUB_IDS[self.size]
            try:
                model = transformers.Dinov2Model.from_pretrained(source, attn_implementation="sdpa")
            except (OSError, ValueError) as exc:
                raise EncoderUnavailableError(
                    f"DINOv2 weights not available for {source!r} ({str(exc).splitlines()[0]}). No package ships "
                    f"them: pass --param dinov2.weights=/path/to/dir (a Dinov2Model.save_pretrained directory), "
                    f"or run where the Hugging Face hub is reachable."
                ) from None
            try:
                self._processor = transformers.AutoImageProcessor.from_pretrained(source)
            except (OSError, ValueError):
                # A weights-only directory: DINOv2's published preprocessing.
                self._processor = transformers.BitImageProcessor(
                    size={"shortest_edge": 256}, crop_size={"height": 224, "width": 224}, do_center_crop=True,
                    image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])
            self._model, self._device, self._dtype = place(model, self.device, self.precision)
        return self._model

    def encode(self, items):
        torch = require("torch")
        model = self.model

        def features(batch):
            pixels = self._processor(images=[to_rgb(i) for i in batch], return_tensors="pt")["pixel_values"]
            tokens = model(pixel_values=pixels.to(self._device, self._dtype)).last_hidden_state
            cls, patches = tokens[:, 0], tokens[:, 1:].mean(dim=1)
            return {"cls": cls, "mean": patches, "cls+mean": torch.cat([cls, patches], dim=1)}[self.pooling]

        return encode_in_batches(items, self.batch_size, features, self.normalize, self.dim)
