"""The data stage: load a dataset, encode its raw items through the embedding cache, and encode the
corrupted copies that input-stage perturbations need. It runs in the driver only: what leaves it
(embedded splits, corrupted embeddings) is what the evaluate stage reads, in this process or a worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .arrays import returned_matrix
from .cache import CacheWriteError, EmbeddingCache, raw_items_digest, texts_digest
from .errors import InvalidParameterError
from .interfaces import Dataset, DatasetSplits, Encoder, PairedData
from .plan import Cell, config_key, perturbation_identity
from .protocols import paper_splits
from .registry import Registry
from .robustness import CorruptedItems, side_of

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CorruptedInputs:
    """An input-stage perturbation applied to every raw train item of one side, then encoded.

    changeable: ``(n,)`` bool, the rows the perturbation can change; embedded: ``(n, d)`` float32."""

    changeable: np.ndarray
    embedded: np.ndarray


class DataStage:
    """Embedded splits per dataset, one dataset in memory at a time (the sweep goes dataset by dataset)."""

    def __init__(self, registry: Registry, cache: EmbeddingCache | None = None,
                 on_encode: Callable[[str, int, int], None] | None = None,
                 shard_encoder: Callable[[str, dict, Any], Callable] | None = None):
        """``cache``: where embeddings of raw datasets are kept (None: encode every time).
        ``on_encode(label, done, total)`` reports encoding progress. ``shard_encoder(name, params,
        items)``: encodes the cache's chunks elsewhere (a Ray executor's encoder actors), each cached
        as it is done; None: here, in this process."""
        self.registry = registry
        self.cache = cache
        self.on_encode = on_encode
        self.shard_encoder = shard_encoder
        # The dataset in memory: its data key, embedded splits, raw splits; corrupted inputs by damage.
        self._loaded: tuple[str, DatasetSplits, DatasetSplits] | None = None
        self._corrupted: dict[str, CorruptedInputs] = {}

    def splits_for(self, config: dict[str, Any]) -> DatasetSplits:
        """Load (and encode, where the dataset has raw items) one dataset; memoized per config."""
        protocol = config.get("protocol", "standard")
        key = config_key({"dataset": config["dataset"], "encoders": config["encoders"], "protocol": protocol})
        if self._loaded is None or self._loaded[0] != key:
            dataset: Dataset = self.registry.create("dataset", config["dataset"]["name"], config["dataset"]["params"])
            raw = dataset.load()
            splits = self._embed(raw, config["dataset"], config["encoders"])
            self._loaded = (key, paper_splits(splits) if protocol == "paper" else splits, raw)
            self._corrupted = {}
        return self._loaded[1]

    def corrupted_inputs(self, cell: Cell) -> CorruptedInputs | None:
        """For a cell under an input-stage perturbation on a dataset of raw items: its damaged train
        side, encoded (once per perturbation and dataset). None for any other cell."""
        damage = cell.damage
        if damage is None or damage.stage != "input" or not self.registry.load("dataset", cell.dataset).raw:
            return None
        splits = self.splits_for(cell.config)
        if damage.identity not in self._corrupted:
            perturbation = self.registry.create("perturbation", damage.name, damage.params)
            side = side_of(perturbation, splits.modalities)
            raw = self._loaded[2].train
            raw_side = raw.x if side == "x" else raw.y
            items = CorruptedItems(raw_side, perturbation, perturbation.seed)
            if side == "y":
                # Captions are small: corrupt each once, not on every pass that hashes, dedups and
                # encodes them (the lazy sequence is for photo collections).
                items = list(items)
            changeable = np.array([perturbation.can_change(item) for item in raw_side], dtype=bool)
            ids = (texts_digest(items) if side == "y" else  # the clean items' identity, with the damage's
                   raw_items_digest(raw.item_ids, raw_side) if raw.item_ids is not None else None)
            embedded = self._encode(items, cell.config["dataset"], cell.config["encoders"], perturbation.modality,
                                    "train", ids, cell.config["perturbation"])
            self._corrupted[damage.identity] = CorruptedInputs(changeable, embedded)
        return self._corrupted[damage.identity]

    def _embed(self, splits: DatasetSplits, dataset: dict[str, Any], encoders: dict[str, Any]) -> DatasetSplits:
        if splits.train.is_embedded and splits.test.is_embedded:
            return splits
        x_modality, y_modality = splits.modalities

        def encode(split: PairedData, name: str) -> PairedData:
            x_ids = raw_items_digest(split.item_ids, split.x) if split.item_ids is not None else None
            return PairedData(
                x=self._encode(split.x, dataset, encoders, x_modality, name, x_ids),
                y=self._encode(split.y, dataset, encoders, y_modality, name, texts_digest(split.y)),
                text_item=split.text_item, item_ids=split.item_ids, latent=split.latent, labels=split.labels,
            )

        return DatasetSplits(encode(splits.train, "train"), encode(splits.test, "test"), splits.modalities)

    def _encode(self, items, dataset: dict[str, Any], encoders: dict[str, Any], modality: str, split: str,
                ids_hash: str | None, damage: dict[str, Any] | None = None) -> np.ndarray:
        """Embeddings of one side of one split, through the cache when the items have identities.
        ``damage``: the perturbation that corrupted these items (part of the cache key).

        Repeated texts are encoded once: identical captions must get identical embeddings (an
        encoder's batch composition moves the last bits, which would break exact ties by noise and
        make instance-level ranks differ from machine to machine), and encoding them once is cheaper.
        """
        if ids_hash is not None and len(items) and all(isinstance(t, str) for t in items):
            first = dict.fromkeys(items)
            if len(first) < len(items):
                unique = list(first)
                row = {text: i for i, text in enumerate(unique)}
                embedded = self._encode(unique, dataset, encoders, modality, split, texts_digest(unique), damage)
                return embedded[np.fromiter((row[t] for t in items), dtype=np.intp, count=len(items))]
        if modality not in encoders:
            raise InvalidParameterError(
                f"this dataset holds raw {modality} items; choose an encoder with --{modality}-encoder NAME "
                f"(see `alignbench list`)."
            )
        described = encoders[modality]
        encoder: Encoder = self.registry.create("encoder", described["name"], described["params"])
        label = f"{dataset['name']} {split} {modality} ({described['name']})"
        if damage is not None:
            label += f", {damage['name']}"
        progress = (lambda done, total: self.on_encode(label, done, total)) if self.on_encode else None

        def encode(chunk):
            return checked_embeddings(encoder.encode(chunk), described["name"], len(chunk), encoder.dim)

        if self.cache is None or ids_hash is None:
            if ids_hash is None and self.cache is not None:
                log.warning("%s has no item ids; its embeddings are not cached", label)
            return encode(items)
        identity = {"name": described["name"], "source": described["source"], **encoder.identity()}
        dataset_identity = {"dataset": dataset["name"], "split": split, "side": modality}
        if "version" in dataset:
            dataset_identity["version"] = dataset["version"]
        if damage is not None:
            dataset_identity["perturbation"] = perturbation_identity(damage)
        try:
            encode_shards = self.shard_encoder and self.shard_encoder(described["name"], described["params"], items)
            if encode_shards is not None:
                def checked_shards(ranges):  # encoded elsewhere: the width is not asked here (it may load a model)
                    for start, stop, embedded in encode_shards(ranges):
                        yield start, stop, checked_embeddings(embedded, described["name"], stop - start)

                return self.cache.get_or_encode_in_shards(
                    checked_shards, items,
                    encoder_identity=identity, dataset_identity=dataset_identity, ids_hash=ids_hash,
                    progress=progress)
            return self.cache.get_or_encode(
                encode, items, encoder_identity=identity, dataset_identity=dataset_identity,
                ids_hash=ids_hash, progress=progress,
            )
        except CacheWriteError as exc:  # encoded, not cached: warn once (the cache tries no more writes) and go on
            log.warning("%s", exc)
            return exc.embeddings


def checked_embeddings(embedded: Any, encoder: str, rows: int, dim: int | None = None) -> np.ndarray:
    """An encoder's output as ``(rows, dim)`` float32, or a one-line error naming the encoder (before
    it is cached, and before a wrong row count reads as the dataset's fault). ``dim``: the encoder's
    declared width, None where it is not checked."""
    # Non-finite rows would be cached, refused on every later read, and encoded again.
    return returned_matrix(embedded, f"encoder {encoder!r}", rows, "item", dim=dim,
                           nonfinite="check its weights and its inputs (an empty caption, a blank image).")
