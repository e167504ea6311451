"""Noisy features: Gaussian noise added to one modality's embeddings."""

from __future__ import annotations

import numpy as np

from alignbench import Perturbation, Range
from alignbench.robustness import embedding_noise_sigma


class EmbeddingNoise(Perturbation):
    """Adds isotropic Gaussian noise to the damaged rows at ``snr_db`` (signal power over noise power,
    in decibels, measured on the whole modality: 0 dB is as much noise as signal)."""

    name = "embedding-noise"
    description = "Gaussian noise on embeddings at an SNR"
    parameter_ranges = {"snr_db": Range()}  # any finite level in dB: below 0 the noise outweighs the signal
    stage = "embedding"

    def __init__(self, modality: str = "image", snr_db: float = 0.0):
        self.modality = modality
        self.snr_db = snr_db

    def corrupt_embeddings(self, e: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        sigma = embedding_noise_sigma(e, self.snr_db)
        # Noise is drawn for every row, then applied to the damaged ones: a row's noise is the same
        # at every fraction (nested damage).
        noise = rng.standard_normal(e.shape, dtype=np.float32)
        out = e.astype(np.float32, copy=True)
        out[rows] += np.float32(sigma) * noise[rows]
        return out
