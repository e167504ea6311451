"""The photos bundled with scikit-image, captioned by their own docstrings: a real smoke test."""

from __future__ import annotations

import numpy as np

from alignbench import Dataset, DatasetSplits, PairedData, Range
from alignbench.errors import DatasetNotFoundError

from .splitting import split_items

# The images that ship inside scikit-image (no download); captions are each loader's docstring line.
PHOTOS = ("astronaut", "brick", "camera", "cell", "checkerboard", "chelsea", "clock", "coffee", "coins",
          "colorwheel", "grass", "gravel", "horse", "hubble_deep_field", "immunohistochemistry", "logo",
          "microaneurysms", "moon", "page", "retina", "rocket", "shepp_logan_phantom", "text")


class SkimagePhotos(Dataset):
    """23 real images ("Chelsea the cat.", "Coffee cup.", "Greek coins from Pompeii." ...), one
    caption each, split in half by ``seed``. Too small to rank methods; it checks that real images
    and real text run end to end."""

    name = "skimage-photos"
    description = "scikit-image's bundled photos with their docstring captions (smoke test)"
    parameter_ranges = {"test_fraction": Range(low=0, high=1, open_low=True, open_high=True), "seed": Range(low=0)}
    raw = True

    def __init__(self, test_fraction: float = 0.5, seed: int = 0):
        self.test_fraction = test_fraction
        self.seed = seed

    def load(self) -> DatasetSplits:
        try:
            import skimage.data
        except ImportError:
            raise DatasetNotFoundError("skimage-photos needs scikit-image: pip install scikit-image") from None
        images, captions = [], []
        for name in PHOTOS:
            loader = getattr(skimage.data, name)
            images.append(np.asarray(loader()))
            captions.append(loader.__doc__.strip().splitlines()[0].strip())
        data = PairedData(x=images, y=captions, text_item=np.arange(len(PHOTOS)), item_ids=PHOTOS)
        return split_items(data, self.test_fraction, np.random.default_rng(self.seed))
