"""The robustness suite's mechanics: which rows a perturbation damages, and what the aligner then sees.

A perturbation damages a fraction of one modality's rows in the train split (the anchors and the
unpaired data). Which rows is decided here, the same way for every perturbation: a seeded
permutation of the rows the perturbation can change, cut at ``round(fraction * n)``, so that for a
seed the 20% are inside the 40% (a curve over fractions measures damage, not the luck of each draw).
The held-out test split is never touched: the question is how well an alignment learnt from damaged
data retrieves clean data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .errors import InvalidParameterError
from .interfaces import Anchors, PairedData, Perturbation

STAGES = ("drop", "input", "embedding")
_ROWS_STREAM = 0x0B5  # keeps the damaged rows independent of the anchor draw of the same seed
_NOISE_STREAM = 0xE3B
_ITEMS_STREAM = 0x17E  # with the item's index third, no item's stream is another purpose's
# How raw items' streams are derived, recorded in input-stage cells' keys and their corrupted copies'
# cache keys. 1 (unrecorded): [seed, index], which for items 1, 181 and 3643 was the unpaired
# shuffle's, the damaged rows' and the embedding noise's stream of the same seed.
ITEM_STREAMS = 2


def side_of(perturbation: Perturbation, modalities: tuple[str, str]) -> str:
    """"x" or "y": the side of the dataset the perturbation's modality names."""
    modality = perturbation.modality
    if modality not in modalities:
        raise InvalidParameterError(
            f"perturbation {perturbation.name!r} damages {modality!r} but this dataset's modalities are "
            f"{' and '.join(modalities)}; set its modality to one of them."
        )
    return "x" if modality == modalities[0] else "y"


def check_perturbation(perturbation: Perturbation) -> None:
    """Catch a misconfigured perturbation before any work is done."""
    if type(perturbation).stage not in STAGES:
        raise InvalidParameterError(
            f"perturbation {perturbation.name!r} has stage {type(perturbation).stage!r}; use one of {', '.join(STAGES)}."
        )
    allowed = type(perturbation).modalities
    if allowed and perturbation.modality not in allowed:
        raise InvalidParameterError(
            f"perturbation {perturbation.name!r} damages {' or '.join(allowed)} items, not {perturbation.modality!r}."
        )


def check_fraction(percent: int) -> None:
    if not 0 < percent < 100:
        raise InvalidParameterError(f"damage fractions are percentages between 1 and 99, got {percent}.")


def damaged_rows(changeable: np.ndarray, percent: int, seed: int, label: str = "perturbation") -> np.ndarray:
    """Sorted indices of exactly ``round(percent / 100 * n)`` rows, drawn from the changeable ones.

    changeable: ``(n,)`` bool, the rows the perturbation can change. Nested across fractions for a seed.
    """
    changeable = np.asarray(changeable, dtype=bool)
    check_fraction(percent)
    n = changeable.size
    count = int(round(percent / 100 * n))
    candidates = np.flatnonzero(changeable)
    if count > candidates.size:
        raise InvalidParameterError(
            f"{label} can change only {candidates.size} of {n} rows ({100 * candidates.size / max(n, 1):.0f}%), "
            f"fewer than the {percent}% asked for; lower the fraction."
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed, _ROWS_STREAM]))
    return np.sort(rng.permutation(candidates)[:count])


def item_rng(seed: int, index: int) -> np.random.Generator:
    """The generator that corrupts raw item ``index``: the same damage whatever else is damaged."""
    return np.random.default_rng(np.random.SeedSequence([seed, _ITEMS_STREAM, index]))


class CorruptedItems(Sequence):
    """Every raw item of a split in its damaged version, made on access (no copy of a photo collection
    is held in memory); sliceable, as encoders read items in chunks. Items the perturbation cannot
    change (``can_change``) stay as they are: they are never among the damaged rows, and
    ``corrupt_item`` is asked only about items it can change."""

    def __init__(self, items: Sequence[Any], perturbation: Perturbation, seed: int):
        self.items = items
        self.perturbation = perturbation
        self.seed = seed

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = int(index)
        if index < 0:
            index += len(self)
        item = self.items[index]
        if not self.perturbation.can_change(item):
            return item
        return self.perturbation.corrupt_item(item, item_rng(self.seed, index))


@dataclass(frozen=True)
class Damage:
    """What the aligner sees after damage.

    train: the embedded train split with the damaged rows replaced (dropped rows keep their old values
    but are never shown). kept_items / kept_texts: ``(n_items,)`` / ``(n_texts,)`` bool, the rows the
    aligner may use. side: "x" or "y"; rows: the damaged rows of that side.
    """

    train: PairedData
    kept_items: np.ndarray
    kept_texts: np.ndarray
    side: str
    rows: np.ndarray


def apply_damage(train: PairedData, perturbation: Perturbation, side: str, rows: np.ndarray, seed: int,
                 corrupted: np.ndarray | None = None) -> Damage:
    """Damage ``rows`` of one side of an embedded train split.

    corrupted: for input-stage perturbations, the embeddings of every item's damaged version (rows
    not in ``rows`` are ignored).
    """
    stage = type(perturbation).stage
    clean = train.x if side == "x" else train.y
    kept = {"x": np.ones(train.n_items, dtype=bool), "y": np.ones(train.n_texts, dtype=bool)}
    values = clean
    if stage == "drop":
        kept[side][rows] = False
    elif stage == "input":
        if corrupted is None or corrupted.shape != clean.shape:
            raise InvalidParameterError(f"perturbation {perturbation.name!r} corrupts raw items: encode its "
                                        f"corrupted copy of the split first.")
        values = clean.copy()
        values[rows] = corrupted[rows]
    else:
        rng = np.random.default_rng(np.random.SeedSequence([seed, _NOISE_STREAM]))
        values = np.asarray(perturbation.corrupt_embeddings(clean, rows, rng), dtype=np.float32)
        if values.shape != clean.shape:
            raise InvalidParameterError(f"perturbation {perturbation.name!r} returned shape {values.shape} "
                                        f"for embeddings of shape {clean.shape}.")
    damaged = replace(train, x=values) if side == "x" else replace(train, y=values)
    return Damage(damaged, kept["x"], kept["y"], side, np.asarray(rows, dtype=np.int64))


def surviving_anchors(anchors: Anchors, damage: Damage) -> Anchors:
    """The anchor pairs whose item and text both survive, with their (possibly damaged) embeddings."""
    keep = damage.kept_items[anchors.items] & damage.kept_texts[anchors.texts]
    items, texts = anchors.items[keep], anchors.texts[keep]
    train = damage.train
    return Anchors(items=items, texts=texts, x=train.x[items], y=train.y[texts],
                   latent=None if anchors.latent is None else anchors.latent[keep])


def embedding_noise_sigma(e: np.ndarray, snr_db: float) -> float:
    """The standard deviation of Gaussian noise that puts a modality's embeddings at ``snr_db``:
    signal power is the mean squared deviation of a coordinate from its mean."""
    centred = e.astype(np.float64) - e.mean(axis=0, dtype=np.float64)
    power = float(np.mean(centred ** 2))
    return float(np.sqrt(power / 10 ** (snr_db / 10)))
