"""Corrupted photos: pixel noise and blur applied to raw images before they are encoded."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.ndimage import gaussian_filter

from alignbench import Perturbation, Range


def pixels(item: Any) -> np.ndarray:
    """An image item as a float array in [0, 1], its 8-bit levels as the image encoders read them
    (16-bit arrays on their 0-65535 scale, say): arrays keep their shape (H x W or H x W x 3); paths
    and PIL images become H x W x 3."""
    from alignbench_plugins.encoders.images import as_uint8, to_rgb

    levels = as_uint8(item) if isinstance(item, np.ndarray) else np.asarray(to_rgb(item))
    return levels.astype(np.float32) / 255.0


def to_uint8(array: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(array * 255.0), 0, 255).astype(np.uint8)


class ImageNoise(Perturbation):
    """Adds Gaussian noise of standard deviation ``sigma`` (in units of the full intensity range) to
    every pixel, then clips to [0, 1] and quantizes to 8 bits."""

    name = "image-noise"
    description = "Gaussian pixel noise"
    parameter_ranges = {"sigma": Range(low=0), "seed": Range(low=0)}
    stage = "input"
    modalities = ("image",)
    version = "2"  # 2: arrays read as the image encoders read them (16-bit as 16-bit)

    def __init__(self, sigma: float = 0.2, seed: int = 0, modality: str = "image"):
        self.sigma = sigma
        self.seed = seed
        self.modality = modality

    def corrupt_item(self, item: Any, rng: np.random.Generator) -> np.ndarray:
        image = pixels(item)
        return to_uint8(image + self.sigma * rng.standard_normal(image.shape, dtype=np.float32))


class ImageBlur(Perturbation):
    """Gaussian blur of standard deviation ``sigma`` pixels over the two spatial axes."""

    name = "image-blur"
    description = "Gaussian blur"
    parameter_ranges = {"sigma": Range(low=0), "seed": Range(low=0)}
    stage = "input"
    modalities = ("image",)
    version = "2"  # 2: arrays read as the image encoders read them (16-bit as 16-bit)

    def __init__(self, sigma: float = 1.5, seed: int = 0, modality: str = "image"):
        self.sigma = sigma
        self.seed = seed
        self.modality = modality

    def can_change(self, item: Any) -> bool:
        # A flat image is its own blur.
        return not (isinstance(item, np.ndarray) and item.min() == item.max())

    def corrupt_item(self, item: Any, rng: np.random.Generator) -> np.ndarray:
        image = pixels(item)
        sigma = (self.sigma, self.sigma, 0) if image.ndim == 3 else self.sigma
        return to_uint8(gaussian_filter(image, sigma=sigma, mode="nearest"))
