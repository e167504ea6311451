"""Any transformers vision backbone (DINOv2, ViT, SigLIP's vision tower, ConvNeXt...) through
``AutoModel`` + ``AutoImageProcessor``."""

from __future__ import annotations

from typing import Literal

from alignbench.errors import InvalidParameterError

from .base import Precision, TorchEncoder, missing_weights
from .images import processor_pixels
from .runtime import require


class HFImageEncoder(TorchEncoder):
    """Features of a transformers vision model, with the checkpoint's own image processor.

    ``weights``: a hub id (``facebook/dinov2-small``, ``google/vit-base-patch16-224-in21k``,
    ``google/siglip-base-patch16-224``, ``facebook/convnext-tiny-224``; needs a network or a filled
    Hugging Face cache) or a local ``save_pretrained`` directory holding the model and its image
    processor. A two-tower checkpoint (CLIP, SigLIP) uses its vision tower.

    ``pooling``: ``cls`` (the class token; transformers that have one), ``mean`` (mean of the patch
    tokens, after the class and register tokens; of the feature map for convolutional models) or
    ``pooler`` (the model's own ``pooler_output``: ViT's tanh head, SigLIP's attention pool,
    ConvNeXt's normalized global average). Tokens are pooled after the backbone's final layer norm:
    CLIP-style towers (CLIP, AltCLIP, X-CLIP...) return them before it and norm only the pooled class
    token, so there it is applied to them (``cls`` is then CLIP's own pooled output).
    """

    name = "hf-image"
    description = "any transformers vision backbone"
    modality = "image"
    # 2: ViT-MAE unmasked, DeiT's distillation token left out of mean pooling, 16-bit and one-channel
    # images read from their full range (plugins/encoders/images.py). 3: CLIP-style towers' tokens
    # pooled after their final layer norm.
    version = "3"
    requires = ("torch", "transformers")
    # With torchvision installed, transformers prepares images with its fast processors: other pixels.
    libraries = ("torch", "transformers", "torchvision", "pillow")

    def __init__(self, weights: str | None = None, pooling: Literal["cls", "mean", "pooler"] = "cls",
                 device: str = "auto", batch_size: int = 16, precision: Precision = "fp32",
                 normalize: bool = False):
        super().__init__(weights, device, batch_size, precision, normalize)
        self.pooling = pooling

    def available(self) -> bool:
        return self.weights is not None and super().available()

    def validate(self) -> None:
        """At planning: a model must be named (there is no default backbone)."""
        super().validate()
        if self.weights is None:
            raise InvalidParameterError("hf-image needs weights: --param hf-image.weights=HUB_ID_OR_DIRECTORY "
                                        "(e.g. facebook/dinov2-small or a save_pretrained directory)")

    def load_model(self):
        transformers = require("transformers")
        self.validate()
        try:
            model = transformers.AutoModel.from_pretrained(self.weights)
            self._processor = transformers.AutoImageProcessor.from_pretrained(self.weights)
        except (OSError, ValueError) as exc:
            raise missing_weights("hf-image", self.weights, exc,
                                  "Pass --param hf-image.weights=/path/to/dir (the model and its image processor "
                                  "saved with save_pretrained), or run where the Hugging Face hub is reachable.") from None
        if isinstance(getattr(model, "vision_model", None), require("torch").nn.Module):
            model = model.vision_model  # CLIP / SigLIP (or their vision-only wrappers): the tower alone
        if getattr(model.config, "mask_ratio", 0):
            # ViT-MAE drops this share of the patches at random on every call, in eval mode too.
            model.config.mask_ratio = 0.0
        embeddings = getattr(model, "embeddings", None)
        self._prefix = 0
        # The class token: ``cls_token`` (ViT, DINOv2, BEiT...) or ``class_embedding`` (CLIP); after it
        # the registers (DINOv2 with registers) and DeiT's distillation token are not patches either.
        if any(getattr(embeddings, a, None) is not None for a in ("cls_token", "class_embedding")):
            self._prefix = (1 + int(getattr(model.config, "num_register_tokens", 0) or 0)
                            + int(getattr(embeddings, "distillation_token", None) is not None))
        self._final_norm = None  # decided on the first batch: see normed_tokens
        if self.pooling == "cls" and not self._prefix:
            raise InvalidParameterError(f"hf-image.pooling=cls: {type(model).__name__} has no class token; use "
                                        f"pooling=mean or pooling=pooler")
        return model

    def features(self, model, batch):
        pixels = processor_pixels(self._processor, batch, self.device_)
        output = model(pixel_values=pixels.to(self.device_, self.dtype_))
        if self.pooling == "pooler":
            pooled = getattr(output, "pooler_output", None)
            if pooled is None:
                raise InvalidParameterError(f"hf-image.pooling=pooler: {type(model).__name__} has no pooler output; "
                                            f"use pooling=cls or pooling=mean")
            return pooled.flatten(1)
        hidden = output.last_hidden_state
        if hidden.ndim == 4:  # a convolutional feature map (n, c, h, w)
            return hidden.mean(dim=(2, 3))
        hidden = self.normed_tokens(model, hidden, output)
        return hidden[:, 0] if self.pooling == "cls" else hidden[:, self._prefix:].mean(dim=1)

    def normed_tokens(self, model, hidden, output):
        """The tokens after the backbone's final layer norm. ViT, DINOv2, SigLIP and BLIP return them
        normed; a CLIP-style tower returns them before its ``post_layernorm`` and norms only the
        class token it pools. Told apart on the first batch: its pooler output is its normed class
        token, and its tokens are not the output of a layer norm (BLIP's pooler norms its already
        normed class token a second time)."""
        norm = getattr(model, "post_layernorm", None)
        if self._final_norm is None:
            torch = require("torch")
            pooled = getattr(output, "pooler_output", None)
            self._final_norm = bool(
                self._prefix and norm is not None and pooled is not None and pooled.shape == hidden[:, 0].shape
                and torch.allclose(norm(hidden[:, 0]), pooled, rtol=1e-4, atol=1e-5)
                and not layer_normed(norm, hidden.flatten(0, -2)))
        return norm(hidden) if self._final_norm else hidden


def layer_normed(norm, tokens) -> bool:
    """Whether ``tokens`` ``(n, d)`` are outputs of the layer norm ``norm``: undone its affine map,
    each has mean 0 and variance 1 (or 0: a token whose input was constant)."""
    weight, bias = getattr(norm, "weight", None), getattr(norm, "bias", None)
    z = tokens.float()
    if bias is not None:
        z = z - bias.float()
    if weight is not None:
        z = z / weight.float().where(weight.abs() > 1e-6, weight.new_ones(()))
    variance = z.var(-1, unbiased=False)
    return bool((z.mean(-1).abs() < 1e-3).all() and (((variance - 1).abs() < 1e-2) | (variance < 1e-6)).all())
