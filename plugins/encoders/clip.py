"""CLIP's two towers through transformers ``CLIPModel``: the jointly trained reference."""

from __future__ import annotations

from .base import Precision, TorchEncoder, missing_weights
from .images import processor_pixels
from .runtime import require

DEFAULT_MODEL = "openai/clip-vit-base-patch32"


class _CLIPTower(TorchEncoder):
    """Shared loading: ``weights`` is a local ``save_pretrained`` directory (model + processor), or a
    hub id (default ``openai/clip-vit-base-patch32``; needs a network or a filled HF cache)."""

    requires = ("torch", "transformers")
    # With torchvision installed, transformers prepares images with its fast processors: other pixels.
    libraries = ("torch", "transformers", "torchvision", "pillow")

    def __init__(self, weights: str = DEFAULT_MODEL, device: str = "auto", batch_size: int = 64,
                 precision: Precision = "fp32", normalize: bool = False):
        super().__init__(weights, device, batch_size, precision, normalize)

    def output_width(self, model) -> int:
        return model.config.projection_dim

    def load_model(self):
        transformers = require("transformers")
        try:
            model = transformers.CLIPModel.from_pretrained(self.weights, attn_implementation="sdpa")
            self._processor = transformers.CLIPProcessor.from_pretrained(self.weights)
        except (OSError, ValueError) as exc:
            raise missing_weights("CLIP", self.weights, exc,
                                  f"No package ships them: pass --param {self.name}.weights=/path/to/dir (CLIPModel "
                                  f"and CLIPProcessor saved with save_pretrained), or run where the Hugging Face "
                                  f"hub is reachable.") from None
        return model


def _tensor(output):
    # transformers 5 returns a model output from get_*_features; older versions a tensor.
    return output if not hasattr(output, "pooler_output") else output.pooler_output


class CLIPImageEncoder(_CLIPTower):
    name = "clip-image"
    description = "CLIP image tower"
    modality = "image"
    version = "2"  # 2: 16-bit and one-channel images read from their full range (images.py)

    def features(self, model, batch):
        pixels = processor_pixels(self._processor.image_processor, batch, self.device_)
        return _tensor(model.get_image_features(pixel_values=pixels.to(self.device_, self.dtype_)))


class CLIPTextEncoder(_CLIPTower):
    name = "clip-text"
    description = "CLIP text tower"
    modality = "text"

    def features(self, model, batch):
        # Pad per batch, not to CLIP's 77 tokens: 29 vs ~150 sentences/s on 2 CPU cores.
        tokens = self._processor(text=list(batch), return_tensors="pt", padding=True, truncation=True)
        return _tensor(model.get_text_features(**{k: v.to(self.device_) for k, v in tokens.items()}))
