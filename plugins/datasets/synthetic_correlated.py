"""Seed 001's synthetic benchmark: modalities that share a latent with a controlled correlation."""

from __future__ import annotations

import numpy as np

from alignbench import Dataset, PairedData, Range
from alignbench.params import check_fits_in_memory

from .splitting import item_ids, split_items


class SyntheticCorrelated(Dataset):
    """Items carry a shared latent ``z`` (clustered in ``n_classes`` classes) and each modality adds
    its own signal::

        x_i  = f( sqrt(c) z_i A_x + sqrt(1 - c) u_i  B_x ) + noise * e
        y_ij = f( sqrt(c) z_i A_y + sqrt(1 - c) v_ij B_y ) + noise * e     (j = 1..n_captions)

    ``c = correlation`` is the share of each modality's signal that the other can see; ``u_i`` is an
    image-specific signal and ``v_ij`` a caption-specific one, so captions of one item differ like
    real captions do. ``f`` is ``tanh`` (a mild nonlinearity no linear map undoes exactly) or the
    identity. ``seed`` fixes the data; the sweep's seeds only vary the anchors.
    """

    name = "synthetic-correlated"
    description = "Controlled cross-modal correlation, several captions per item (seed 001)"
    parameter_ranges = {
        "n_items": Range(low=2),  # one train and one test item at least
        **{key: Range(low=1) for key in ("n_captions", "latent_dim", "specific_dim", "dim_x", "dim_y", "n_classes")},
        "correlation": Range(low=0, high=1), "noise": Range(low=0),
        "test_fraction": Range(low=0, high=1, open_low=True, open_high=True), "seed": Range(low=0)}

    def __init__(
        self,
        n_items: int = 2000,
        n_captions: int = 5,
        latent_dim: int = 16,
        specific_dim: int = 16,
        dim_x: int = 128,
        dim_y: int = 96,
        correlation: float = 0.8,
        noise: float = 0.1,
        n_classes: int = 10,
        nonlinearity: bool = True,
        test_fraction: float = 0.5,
        seed: int = 0,
    ):
        self.n_items = n_items
        self.n_captions = n_captions
        self.latent_dim = latent_dim
        self.specific_dim = specific_dim
        self.dim_x = dim_x
        self.dim_y = dim_y
        self.correlation = correlation
        self.noise = noise
        self.n_classes = n_classes
        self.nonlinearity = nonlinearity
        self.test_fraction = test_fraction
        self.seed = seed

    def validate(self) -> None:
        """Impossible values and data too large for this machine, rejected when the sweep is planned."""
        super().validate()
        texts = self.n_items * self.n_captions
        check_fits_in_memory("synthetic-correlated.n_items",
                             (self.n_items * (self.latent_dim + self.specific_dim + self.dim_x)
                              + texts * (self.specific_dim + self.dim_y)) * 12)

    def load(self):
        rng = np.random.default_rng(self.seed)
        n, k, s = self.n_items, self.latent_dim, self.specific_dim
        labels = rng.integers(0, self.n_classes, size=n)
        centres = 2.0 * rng.standard_normal((self.n_classes, k))
        latent = (centres[labels] + rng.standard_normal((n, k))) / np.sqrt(5.0)  # unit variance per dim
        shared, own = np.sqrt(self.correlation), np.sqrt(1 - self.correlation)

        def projection(rows, cols):
            return rng.standard_normal((rows, cols)) / np.sqrt(rows)

        a_x, b_x = projection(k, self.dim_x), projection(s, self.dim_x)
        a_y, b_y = projection(k, self.dim_y), projection(s, self.dim_y)
        x = shared * latent @ a_x + own * rng.standard_normal((n, s)) @ b_x
        text_item = np.repeat(np.arange(n), self.n_captions)
        y = shared * latent[text_item] @ a_y + own * rng.standard_normal((len(text_item), s)) @ b_y
        if self.nonlinearity:
            x, y = np.tanh(x), np.tanh(y)
        x = x + self.noise * rng.standard_normal(x.shape)
        y = y + self.noise * rng.standard_normal(y.shape)
        data = PairedData(
            x=x.astype(np.float32), y=y.astype(np.float32), text_item=text_item,
            item_ids=item_ids("corr", n), latent=latent.astype(np.float32), labels=labels,
        )
        return split_items(data, self.test_fraction, rng)
