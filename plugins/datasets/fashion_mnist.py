"""Fashion-MNIST with written captions: the real-image dataset that runs offline.

Images come from Debian's ``dataset-fashion-mnist`` package (or any folder with the four idx
files); each image gets five captions from five hand-written templates for its class, so the
captions carry class-level meaning only: instance-level retrieval is near chance by construction,
and the numbers to read are the class-level ones (``class-retrieval``).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from alignbench import Dataset, DatasetSplits, PairedData, Range
from alignbench.errors import DatasetNotFoundError

from .pinned import ContentPinned

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
CLASSES = ["t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag",
           "ankle boot"]
# {a}: the class's indefinite article ("an ankle boot").
TEMPLATES = [
    "a photo of {a} {noun}",
    "a black and white picture of {a} {noun}",
    "a small grayscale image of {a} {noun}",
    "a low resolution product photo showing {a} {noun}",
    "a centred picture of a single {noun} on a dark background",
]
LAYOUT = f"""\
Expected: a folder with {', '.join(f for pair in FILES.values() for f in pair)}.
On Debian or Ubuntu: sudo apt-get install dataset-fashion-mnist (installs them in {DEFAULT_DIR});
or download them from github.com/zalandoresearch/fashion-mnist and pass --param fashion-mnist.data_dir=DIR."""


def read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


@functools.lru_cache(maxsize=16)
def _content_sha256(path: str, size: int, mtime_ns: int) -> str:
    """sha256 of an idx file's decompressed bytes; ``size`` and ``mtime_ns`` only key the memo."""
    digest = hashlib.sha256()
    with gzip.open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def captions_for(label: int) -> list[str]:
    noun = CLASSES[label]
    article = "an" if noun[0] in "aeiou" else "a"
    return [template.format(a=article, noun=noun) for template in TEMPLATES]


class FashionMNIST(ContentPinned, Dataset):
    """``n_train`` images of the 60k training file (the anchor pool) and ``n_test`` of the 10k test
    file, each a seeded subset (None: all); 28 x 28 grayscale, five captions per image.
    ``sha256``: the four files' content, decompressed (so another gzip of the same data is the same
    data), filled in when left out: cells follow the data, wherever it is read from (``data_dir``,
    ``$ALIGNBENCH_FASHION_MNIST_DIR`` or the Debian package's folder)."""

    name = "fashion-mnist"
    description = "Fashion-MNIST images with five template captions each (offline real data)"
    parameter_ranges = {"n_train": Range(low=1), "n_test": Range(low=1), "seed": Range(low=0)}
    raw = True
    version = "2"  # 2: "an ankle boot" (was "a ankle boot")

    def __init__(self, data_dir: str | None = None, n_train: int | None = 1000, n_test: int | None = 1000,
                 seed: int = 0, sha256: str | None = None):
        self.data_dir = data_dir
        self.n_train = n_train
        self.n_test = n_test
        self.seed = seed
        self.sha256 = sha256

    def content_sha256(self) -> str | None:
        if not self.available():
            return None  # load() says what is missing
        h = hashlib.sha256()
        for pair in FILES.values():
            for name in pair:
                path = (self.directory() / name).resolve()
                stat = path.stat()
                h.update(f"{name}\0{_content_sha256(str(path), stat.st_size, stat.st_mtime_ns)}\0".encode())
        return h.hexdigest()

    def directory(self) -> Path:
        return Path(self.data_dir or os.environ.get("ALIGNBENCH_FASHION_MNIST_DIR") or DEFAULT_DIR)

    def available(self) -> bool:
        return all((self.directory() / f).is_file() for pair in FILES.values() for f in pair)

    def how_to_get(self) -> str:
        return LAYOUT

    def load(self) -> DatasetSplits:
        directory = self.directory()
        if not self.available():
            raise DatasetNotFoundError(f"fashion-mnist: the idx files are not in {directory}.\n{LAYOUT}")
        self.check_pinned(directory, "data")
        rng = np.random.default_rng(self.seed)
        return DatasetSplits(train=self._split("train", self.n_train, rng), test=self._split("test", self.n_test, rng))

    def _split(self, split: str, limit: int | None, rng: np.random.Generator) -> PairedData:
        images_file, labels_file = (self.directory() / f for f in FILES[split])
        images = read_idx(images_file, 16).reshape(-1, 28, 28)
        labels = read_idx(labels_file, 8).astype(np.int64)
        if len(images) != len(labels):
            raise DatasetNotFoundError(f"fashion-mnist: {images_file} and {labels_file} disagree in length.\n{LAYOUT}")
        # The permutation is drawn even when every image is kept, so that the test subset, drawn
        # after it from the same generator, does not depend on n_train.
        order = rng.permutation(len(images))
        chosen = np.arange(len(images)) if limit is None or limit >= len(images) else np.sort(order[:limit])
        captions = [captions_for(int(labels[i])) for i in chosen]
        return PairedData(
            x=[images[i] for i in chosen],
            y=[c for group in captions for c in group],
            text_item=np.repeat(np.arange(len(chosen)), len(TEMPLATES)),
            item_ids=tuple(f"{split}-{i:05d}" for i in chosen),
            labels=labels[chosen],
        )
