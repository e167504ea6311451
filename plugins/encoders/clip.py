"""CLIP's two towers through transformers ``CLIPModel``: the jointly trained reference."""

from __future__ import annotations

from typing import Literal


from alignbench import Encoder

from .images import to_rgb
from .runtime import EncoderUnavailableError, encode_in_batches, place, require, versions, weights_identity

DEFAULT_MODEL = "openai/clip-vit-base-patch32"


class _CLIPTower(Encoder):
    """Shared loading: ``weights`` is a local ``save_pretrained`` directory (model + processor), or a
    hub id (default ``openai/clip-vit-base-patch32``; needs a network or a filled HF cache)."""

    def __init__(self, weights: str = DEFAULT_MODEL, device: str = "auto", batch_size: int = 64,
                 precision: Literal["fp32", "fp16", "bf16"] = "fp32", normalize: bool = False):
        self.weights = weights
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self.normalize = normalize

    @property
    def dim(self) -> int:
        return self.model.config.projection_dim

    def identity(self):
        return {**super().identity(), "weights": weights_identity(self.weights),
                "libraries": versions(["torch", "transformers", "pillow"])}

    @property
    def model(self):
        if getattr(self, "_model", None) is None:
            require("torch")
            transformers = require("transformers")
            try:
                model = transformers.CLIPModel.from_pretrained(self.weights, attn_implementation="sdpa")
                self._processor = transformers.CLIPProcessor.from_pretrained(self.weights)
            except (OSError, ValueError) as exc:
                raise EncoderUnavailableError(
                    f"CLIP weights not available for {self.weights!r} ({str(exc).splitlines()[0]}). No package "
                    f"ships them: pass --param {self.name}.weights=/path/to/dir (CLIPModel and CLIPProcessor "
                    f"saved with save_pretrained), or run where the Hugging Face hub is reachable."
                ) from None
            self._model, self._device, self._dtype = place(model, self.device, self.precision)
        return self._model

    def encode(self, items):
        model = self.model
        return encode_in_batches(items, self.batch_size, lambda batch: self._features(model, batch), self.normalize,
                                 self.dim)


def _tensor(output):
    # transformers 5 returns a model output from get_*_features; older versions a tensor.
    return output if not hasattr(output, "pooler_output") else output.pooler_output


class CLIPImageEncoder(_CLIPTower):
    name = "clip-image"
    description = "CLIP image tower"
    modality = "image"

    def _features(self, model, batch):
        pixels = self._processor(images=[to_rgb(i) for i in batch], return_tensors="pt")["pixel_values"]
        return _tensor(model.get_image_features(pixel_values=pixels.to(self._device, self._dtype)))


class CLIPTextEncoder(_CLIPTower):
    name = "clip-text"
    description = "CLIP text tower"
    modality = "text"

    def _features(self, model, batch):
        # Pad per batch, not to CLIP's 77 tokens: 29 vs ~150 sentences/s on 2 CPU cores.
        tokens = self._processor(text=list(batch), return_tensors="pt", padding=True, truncation=True)
        return _tensor(model.get_text_features(**{k: v.to(self._device) for k, v in tokens.items()}))
