"""Bring your own embeddings: benchmark any encoder pair without writing a plugin."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from alignbench import Dataset, DatasetSplits, PairedData
from alignbench.cache import file_sha256
from alignbench.errors import DatasetNotFoundError, InvalidInputError

from .splitting import split_items

LAYOUT = """\
Pass either one file with named arrays:
  --param embeddings.path=pairs.npz        (or .safetensors) holding
      x          (n_items, dx)  item (image) embeddings
      y          (n_texts, dy)  text embeddings
      text_item  (n_texts,)     optional: the item of each text (default: text i is item i)
      test       (n_items,)     optional: 1 for held-out items (default: a seeded split)
or separate .npy files: --param embeddings.x=images.npy --param embeddings.y=texts.npy
  [--param embeddings.text_item=text_item.npy] [--param embeddings.test=test_mask.npy]
Results follow the files' content: --param embeddings.sha256=HEX pins it (for one file, what sha256sum
prints); left out, it is the digest of the files as they are, and rewritten files get new result cells."""


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Named arrays from .npz, .safetensors or .npy (never unpickled)."""
    if not path.exists():
        raise DatasetNotFoundError(f"{path} does not exist.\n{LAYOUT}")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return {k: archive[k] for k in archive.files}
    if path.suffix == ".safetensors":
        from safetensors.numpy import load_file

        return load_file(str(path))
    if path.suffix == ".npy":
        return {path.stem: np.load(path, allow_pickle=False)}
    raise InvalidInputError(f"cannot read {path.suffix} files; use .npz, .safetensors or .npy.\n{LAYOUT}")


class Embeddings(Dataset):
    """Paired embeddings from files (see ``LAYOUT``); ``name`` labels the leaderboard.

    ``sha256``: the content the files must have (one file: its sha256; several: the sha256 of the JSON
    ``{role: sha256}``, roles ``x``, ``y``, ``text_item``, ``test``). Its effective value, which
    ``get_params`` reports and result cells are keyed by, is the files' digest when it is left out: a
    re-run after the files changed runs new cells instead of reporting the old ones as done.
    """

    name = "embeddings"
    description = "Your own paired embeddings from .npz/.safetensors/.npy files"

    def __init__(self, path: str | None = None, x: str | None = None, y: str | None = None,
                 text_item: str | None = None, test: str | None = None, test_fraction: float = 0.5, seed: int = 0,
                 sha256: str | None = None):
        self.path = path
        self.x = x
        self.y = y
        self.text_item = text_item
        self.test = test
        self.test_fraction = test_fraction
        self.seed = seed
        self.sha256 = sha256

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        if params["sha256"] is None:
            params["sha256"] = self.content_sha256()
        return params

    def content_sha256(self) -> str | None:
        """The digest of the input files as they are now (see the class docstring); None while one is
        missing (``load`` then says which). Each file is read once per size and modification time."""
        files = {"path": self.path} if self.path is not None else {
            key: getattr(self, key) for key in ("x", "y", "text_item", "test") if getattr(self, key) is not None}
        try:
            digests = {role: file_sha256(path) for role, path in files.items()}
        except OSError:
            return None
        if not digests:
            return None
        if "path" in digests:
            return digests["path"]
        return hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()

    def load(self) -> DatasetSplits:
        arrays = self._arrays()
        if self.sha256 is not None and self.content_sha256() != self.sha256:
            raise InvalidInputError(
                f"the embeddings files hold other content than sha256 {self.sha256} (now: {self.content_sha256()}): "
                f"they changed since this run was planned, or embeddings.sha256 names other files. Run again "
                f"without embeddings.sha256 to benchmark the files as they are.")
        for required in ("x", "y"):
            if required not in arrays:
                raise InvalidInputError(f"no array named {required!r} (found: {sorted(arrays)}).\n{LAYOUT}")
        x, y = arrays["x"].astype(np.float32), arrays["y"].astype(np.float32)
        text_item = arrays.get("text_item")
        if text_item is None:
            if len(x) != len(y):
                raise InvalidInputError(f"{len(x)} items but {len(y)} texts and no text_item array to say which "
                                        f"text belongs to which item.\n{LAYOUT}")
            text_item = np.arange(len(x))
        ids = tuple(str(i) for i in range(len(x)))
        data = PairedData(x=x, y=y, text_item=text_item.astype(np.int64), item_ids=ids)
        if "test" not in arrays:
            return split_items(data, self.test_fraction, np.random.default_rng(self.seed))
        mask = arrays["test"].astype(bool)
        if mask.shape != (len(x),) or mask.all() or not mask.any():
            raise InvalidInputError(f"test must be a (n_items,) mask with both train and test items.\n{LAYOUT}")
        return DatasetSplits(train=data.subset(np.flatnonzero(~mask)), test=data.subset(np.flatnonzero(mask)))

    def _arrays(self) -> dict[str, np.ndarray]:
        if self.path is not None:
            return read_arrays(Path(self.path))
        if self.x is None or self.y is None:
            raise DatasetNotFoundError(f"the embeddings dataset needs files.\n{LAYOUT}")
        arrays = {}
        for key in ("x", "y", "text_item", "test"):
            value = getattr(self, key)
            if value is not None:
                arrays[key] = next(iter(read_arrays(Path(value)).values()))
        return arrays
