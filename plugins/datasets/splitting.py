"""Deterministic item-level train/test splits for generated datasets."""

from __future__ import annotations

import numpy as np

from alignbench import DatasetSplits, PairedData
from alignbench.errors import InvalidParameterError


def split_items(data: PairedData, test_fraction: float, rng: np.random.Generator) -> DatasetSplits:
    """Shuffle items with ``rng`` and put the first ``test_fraction`` of them in the test split.

    Splitting is by item, so all texts of an item land in the same split.
    """
    if not 0 < test_fraction < 1:
        raise InvalidParameterError(f"test_fraction must be between 0 and 1, got {test_fraction}.")
    order = rng.permutation(data.n_items)
    n_test = int(round(test_fraction * data.n_items))
    if n_test < 1 or n_test >= data.n_items:
        raise InvalidParameterError(f"{data.n_items} items are too few for test_fraction={test_fraction}.")
    return DatasetSplits(train=data.subset(np.sort(order[n_test:])), test=data.subset(np.sort(order[:n_test])))


def item_ids(prefix: str, n: int) -> tuple[str, ...]:
    return tuple(f"{prefix}-{i:06d}" for i in range(n))
