"""The shared base of torch encoders: parameters, availability, weights identity, batching, input checks.

A third-party encoder names its modality, how to load its model and how to turn one batch into a
tensor (tests/encoders/test_shared_base.py runs this one through the conformance suite)::

    class TinyConvEncoder(TorchEncoder):
        name = "tiny-conv"
        modality = "image"
        parameter_ranges = {**TorchEncoder.parameter_ranges, "width": Range(low=1)}

        def __init__(self, weights: str | None = None, width: int = 8, device: str = "auto",
                     batch_size: int = 4, precision: Precision = "fp32", normalize: bool = False):
            super().__init__(weights, device, batch_size, precision, normalize)
            self.width = width

        def default_weights(self) -> str:
            return "random-init"

        def load_model(self):
            torch.manual_seed(0)
            return torch.nn.Sequential(torch.nn.Conv2d(3, self.width, 7, stride=4), torch.nn.ReLU(),
                                       torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())

        def features(self, model, batch):
            return model(imagenet_tensor(batch, size=64, resize=72).to(self.device_, self.dtype_))

Every numeric parameter declares its possible values in ``parameter_ranges`` (the suite checks that
each is declared and that ``validate`` refuses values outside it), the base's ``batch_size`` included.
``dim`` defaults to encoding nothing but reading the model's output width once (override it when the
width is known without loading). The constructor only stores parameters (scikit-learn style), so a
subclass with more parameters lists them all in its own ``__init__``.
"""

from __future__ import annotations

from abc import abstractmethod
from contextlib import nullcontext
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence

import numpy as np

from alignbench import Encoder, Range

from .heap import heap_kept
from .images import check_image_items
from .runtime import (EncoderUnavailableError, encode_in_batches, importable, place, require, resolve_device,
                      versions, weights_identity)
from .texts import check_text_items

Precision = Literal["fp32", "fp16", "bf16"]


class TorchEncoder(Encoder):
    """``weights``: a local path or a hub id (see :meth:`weights_source`); ``device``: ``auto`` (cuda,
    then mps, then cpu), ``cpu``, ``cuda``...; ``precision``: fp32, or fp16/bf16 on an accelerator;
    ``normalize``: unit-length rows. The model loads on first use and stays loaded."""

    requires: ClassVar[tuple[str, ...]] = ("torch",)  # modules that must import for available()
    libraries: ClassVar[tuple[str, ...]] = ("torch",)  # distributions whose versions key the cache
    parameter_ranges = {"batch_size": Range(low=1)}

    def __init__(self, weights: str | None = None, device: str = "auto", batch_size: int = 32,
                 precision: Precision = "fp32", normalize: bool = False):
        self.weights = weights
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self.normalize = normalize

    # ----------------------------------------------------------------------------- to override

    @abstractmethod
    def load_model(self) -> Any:
        """Load the model (on the CPU, fp32; :meth:`place` moves it). Raise EncoderUnavailableError
        with the fix when the weights are missing."""

    @abstractmethod
    def features(self, model: Any, batch: list) -> Any:
        """``(len(batch), dim)`` tensor for one batch of raw items (already checked)."""

    def default_weights(self) -> str | None:
        """The weights used when ``weights`` is None (a packaged path, a hub id), or None."""
        return None

    def place(self, model: Any) -> Any:
        """Move the loaded model to ``device`` and ``precision`` in eval mode; sets ``device_`` and
        ``dtype_`` for :meth:`features`."""
        placed, self.device_, self.dtype_ = place(model, self.device, self.precision)
        return placed

    # ----------------------------------------------------------------------------- shared

    def weights_source(self) -> str | None:
        return self.weights or self.default_weights()

    def weights_fingerprint(self) -> dict[str, Any]:
        """A local path's files (name, size, time) or a hub id's cached commit: see runtime."""
        source = self.weights_source()
        return {"missing": None} if source is None else weights_identity(source)

    def identity(self) -> dict[str, Any]:
        identity = {**super().identity(), "weights": self.weights_fingerprint(), "libraries": versions(self.libraries)}
        runs_on = self.runs_on()
        if runs_on != "cpu":
            # A GPU's embeddings are not the CPU's bit for bit (other float kernels; images resized
            # on the GPU keep the fractional pixel values the CPU's uint8 resizing rounds), so they
            # get cache entries of their own. The CPU's keys stay what they were.
            identity["runs_on"] = runs_on
        return identity

    def weights_pin(self) -> dict[str, Any] | None:
        """Local weights' files by name and sha256 (not the folder's absolute path, not sizes); None
        for packaged weights (their version names them) and for hub ids: the commit a hub id
        resolves to is None until the first run downloads it, so in a key it would have re-keyed
        every cell of that first run (the commit stays in the embedding cache's key)."""
        fingerprint = self.weights_fingerprint()
        if "files" not in fingerprint:
            return None
        return {"files": [[name, digest] for name, _size, digest in fingerprint["files"]]}

    def runs_on(self) -> str:
        """The kind of device ``device`` resolves to on this machine: ``cpu``, ``cuda`` or ``mps``."""
        if not importable("torch"):
            return "cpu"
        return resolve_device(self.device).type

    def available(self) -> bool:
        return importable(*self.requires) and self.weights_source() is not None

    @property
    def model(self) -> Any:
        if getattr(self, "_model", None) is None:
            for module in self.requires:
                require(module, getattr(self, "extra", "encoders"))
            self._model = self.place(self.load_model())
        return self._model

    @property
    def dim(self) -> int:
        if getattr(self, "_dim", None) is None:
            self._dim = int(self.output_width(self.model))
        return self._dim

    def output_width(self, model: Any) -> int:
        """The embedding width; by default read from one forward pass on a sample item."""
        torch = require("torch")
        with torch.inference_mode():
            return self.features(model, [sample_item(self.modality)]).shape[1]

    def check_items(self, items: Sequence[Any]) -> None:
        """A clear InvalidInputError when the items are not of this encoder's modality."""
        label = self.name or type(self).__name__
        if self.modality == "text":
            check_text_items(items, label)
        elif self.modality == "image":
            check_image_items(items, label)

    def encode(self, items: Sequence[Any]) -> np.ndarray:
        items = list(items)
        self.check_items(items)
        if not items:
            return np.zeros((0, self.dim), np.float32)
        model = self.model
        with heap_kept() if self.runs_on() == "cpu" else nullcontext():
            return encode_in_batches(items, self.batch_size, lambda batch: self.features(model, batch),
                                     self.normalize, self.dim)


def sample_item(modality: str) -> Any:
    if modality == "text":
        return "a photo"
    return np.zeros((32, 32, 3), np.uint8)


def missing_weights(name: str, source: Any, exc: BaseException, how: str) -> EncoderUnavailableError:
    """The one-line error for weights that would not load, naming the parameter to pass."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(source, (str, Path)) and str(source).startswith(("/", ".", "~")) and \
            not Path(str(source)).expanduser().exists():
        first = "no such file or directory"  # not the hub's complaint about a repository id it was never meant to be
    return EncoderUnavailableError(f"{name} weights not available for {source!r} ({first}). {how}")
