"""OpenCLIP's model zoo: any architecture + pretrained tag, a local checkpoint, or a model folder.

List the names with ``python -c "import open_clip; print(open_clip.list_pretrained())"`` (pairs of
architecture and tag, e.g. ``('ViT-B-32', 'laion2b_s34b_b79k')``), as in CLIP_benchmark's
``--model ViT-B-32 --pretrained laion2b_s34b_b79k``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from alignbench.cache import file_sha256
from alignbench.params import parameter_defaults

from .base import Precision, TorchEncoder
from .images import in_slices, to_rgb
from .runtime import EncoderUnavailableError, hub_revision, importable, path_fingerprint, require

LIST_NAMES = "python -c \"import open_clip; print(open_clip.list_pretrained())\""


def import_open_clip():
    """open_clip, or one line saying why it does not import (it needs a torchvision built for the
    installed torch: torchvision's PyPI wheels do not load beside the 2.13.0+cpu build)."""
    try:
        import open_clip
    except ImportError:
        raise EncoderUnavailableError("the OpenCLIP encoders need open_clip: pip install 'alignbench[openclip]'") from None
    except Exception as exc:  # noqa: BLE001  (torchvision's operators fail to register: RuntimeError)
        raise EncoderUnavailableError(
            f"open_clip does not import here ({type(exc).__name__}: {exc}): torchvision must be built for the "
            f"installed torch; install them together, e.g. pip install torch==2.14.1 torchvision==0.29.1") from None
    return open_clip


@functools.lru_cache(maxsize=1)
def open_clip_imports() -> bool:
    """Whether open_clip imports here (installed is not enough: see :func:`import_open_clip`)."""
    try:
        import_open_clip()
    except EncoderUnavailableError:
        return False
    return True


def architecture(model: str) -> str:
    """The name open_clip knows ``model`` by: a ``.json`` model config file is registered first (the
    file's stem is its name), as ``open_clip.add_model_config`` does for an architecture of your own."""
    path = Path(model)
    if path.suffix == ".json":
        if not path.is_file():
            raise EncoderUnavailableError(f"open-clip model config {model} does not exist")
        open_clip = import_open_clip()
        if path.stem not in open_clip.list_models():
            open_clip.add_model_config(path)
        return path.stem
    return model


# One loaded model per (model, checkpoint, device, precision): open-clip-image and open-clip-text
# name the same model, and the pair must not hold (or load) the network twice. Two entries: a sweep
# runs one pair at a time, and a benchmark comparing two models keeps both.
@functools.lru_cache(maxsize=2)
def load_open_clip(model: str, checkpoint: str | None, device: str, precision: str):
    """``(model, image preprocessing, tokenizer, torch device, dtype)``, loaded once per key.
    ``checkpoint`` is a pretrained tag or a local file, loaded with ``weights_only=True`` (never a
    pickle); None for a ``local-dir:`` / ``hf-hub:`` model, which names its own weights."""
    from .runtime import place

    open_clip = import_open_clip()
    name = architecture(model)
    try:
        network, _, preprocess = open_clip.create_model_and_transforms(
            name, pretrained=checkpoint, device="cpu", weights_only=True, require_pretrained=True,
            pretrained_text=False)
        tokenizer = open_clip.get_tokenizer(name)
    except (RuntimeError, OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise EncoderUnavailableError(
            f"OpenCLIP {name!r} with pretrained {checkpoint!r} did not load ({first}). Pass a tag from {LIST_NAMES} "
            f"where the hub is reachable, or a local checkpoint: --param open-clip-image.pretrained=/path/to/"
            f"open_clip_model.safetensors (and the same for open-clip-text).") from None
    network, resolved, dtype = place(network, device, precision)
    return network, preprocess, tokenizer, resolved, dtype


class _OpenCLIPTower(TorchEncoder):
    """``model``: an OpenCLIP architecture (``ViT-B-32``, ``ViT-L-14``, ``RN50``...), a model config
    ``.json`` file of your own, or ``local-dir:/folder`` / ``hf-hub:org/repo`` (config and weights
    together). ``pretrained``: a tag (``laion2b_s34b_b79k``; downloads need a network or a filled
    Hugging Face cache) or a local checkpoint file (``.safetensors``, or ``.pt`` / ``.bin`` read with
    ``weights_only=True``). ``weights``: a local checkpoint file that takes the place of ``pretrained``.
    The image and text encoders of one model share one loaded network."""

    requires = ("torch", "open_clip")
    libraries = ("torch", "open-clip-torch", "torchvision", "pillow")
    extra = "openclip"

    def __init__(self, model: str = "ViT-B-32", pretrained: str | None = "laion2b_s34b_b79k",
                 weights: str | None = None, device: str = "auto", batch_size: int = 32,
                 precision: Precision = "fp32", normalize: bool = False):
        super().__init__(weights, device, batch_size, precision, normalize)
        self.model_name = model
        self.pretrained = pretrained

    def get_params(self) -> dict[str, Any]:
        # The ``model`` parameter is stored as ``model_name``: ``model`` is the loaded network.
        return {name: self.model_name if name == "model" else getattr(self, name)
                for name in parameter_defaults(type(self))}

    def checkpoint(self) -> str | None:
        if self.model_name.startswith(("local-dir:", "hf-hub:")):
            return None
        return self.weights or self.pretrained

    def weights_source(self) -> str | None:
        return self.checkpoint() or self.model_name

    def weights_fingerprint(self) -> dict[str, Any]:
        """A local checkpoint's or folder's files; a tag's hub repository and the commit cached for it."""
        if self.model_name.startswith("local-dir:"):
            return path_fingerprint(self.model_name[len("local-dir:"):])
        if self.model_name.startswith("hf-hub:"):
            return hub_revision(self.model_name[len("hf-hub:"):])
        checkpoint = self.checkpoint()
        identity: dict[str, Any] = {}
        if self.model_name.endswith(".json") and Path(self.model_name).is_file():
            identity["config_sha256"] = file_sha256(self.model_name)
        if checkpoint is None:
            return {**identity, "pretrained": None}
        if Path(checkpoint).exists():
            return {**identity, **path_fingerprint(checkpoint)}
        return {**identity, "tag": checkpoint, **self._tag_revision(checkpoint)}

    def _tag_revision(self, tag: str) -> dict[str, Any]:
        repo = self._tag_repo(tag)
        return {} if repo is None else hub_revision(repo)

    def _tag_repo(self, tag: str) -> str | None:
        try:
            cfg = import_open_clip().get_pretrained_cfg(architecture(self.model_name), tag)
        except EncoderUnavailableError:
            return None
        return (cfg or {}).get("hf_hub", "").strip("/") or None

    def available(self) -> bool:
        if not importable(*self.requires) or not open_clip_imports():
            return False
        if self.model_name.startswith("local-dir:"):
            return Path(self.model_name[len("local-dir:"):]).is_dir()
        if self.model_name.startswith("hf-hub:"):
            return hub_revision(self.model_name[len("hf-hub:"):])["revision"] is not None
        checkpoint = self.checkpoint()
        if checkpoint is None or Path(checkpoint).is_file():
            return True
        # A tag: available once its weights are in the local Hugging Face cache (nothing downloads here).
        try:
            repo = self._tag_repo(checkpoint)
        except Exception:  # noqa: BLE001  (an unknown architecture: load() names it)
            return False
        return repo is not None and hub_revision(repo)["revision"] is not None

    def load_model(self):
        network, self._preprocess, self._tokenizer, self.device_, self.dtype_ = load_open_clip(
            self.model_name, self.checkpoint(), self.device, self.precision)
        return network

    def place(self, model):
        return model  # load_open_clip placed the shared network

    def output_width(self, model) -> int:
        projection = getattr(model, "text_projection", None)
        width = getattr(model.visual, "output_dim", None)
        if width is None and projection is not None:
            width = projection.shape[1] if hasattr(projection, "shape") else projection.out_features
        return int(width) if width is not None else super().output_width(model)


class OpenCLIPImageEncoder(_OpenCLIPTower):
    name = "open-clip-image"
    description = "OpenCLIP image tower"
    modality = "image"
    version = "2"  # 2: 16-bit and one-channel images read from their full range (images.py)

    def features(self, model, batch):
        torch = require("torch")
        pixels = torch.cat(in_slices(batch, lambda part: torch.stack([self._preprocess(to_rgb(i)) for i in part])))
        return model.encode_image(pixels.to(self.device_, self.dtype_))


class OpenCLIPTextEncoder(_OpenCLIPTower):
    name = "open-clip-text"
    description = "OpenCLIP text tower"
    modality = "text"

    def features(self, model, batch):
        # Padded to the model's context length: OpenCLIP pools at the end token's position, and its
        # attention mask is causal, so padding after the end token does not change the embedding.
        return model.encode_text(self._tokenizer(list(batch)).to(self.device_))
