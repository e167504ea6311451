"""Bring your own embeddings: benchmark any encoder pair without writing a plugin."""

from __future__ import annotations

import functools
import hashlib
import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from alignbench import Dataset, DatasetSplits, PairedData, Range
from alignbench.arrays import as_embeddings
from alignbench.cache import file_sha256
from alignbench.errors import DatasetNotFoundError, InvalidInputError, InvalidParameterError

from .splitting import split_items
from .pinned import ContentPinned

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
# The second line of every error about the files: errors are at most two lines (the LAYOUT is in the docs).
HINT = ("Expected: embeddings.path=pairs.npz (or .safetensors) holding x (n_items, dx), y (n_texts, dy), optional "
        "text_item (n_texts,) and test (n_items,); or embeddings.x=X.npy embeddings.y=Y.npy [embeddings.text_item=...].")
MAGIC = {".npz": (b"PK", "a zip archive (numpy.savez)"), ".npy": (b"\x93NUMPY", "a .npy file (numpy.save)")}


def read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Named arrays from .npz, .safetensors or .npy (never unpickled); a file that is not one says so."""
    if path.is_dir():
        raise InvalidInputError(f"{path} is a directory; pass the .npz, .safetensors or .npy file in it.\n{HINT}")
    if not path.exists():
        raise DatasetNotFoundError(f"{path} does not exist.\n{HINT}")
    if path.suffix not in (".npz", ".safetensors", ".npy"):
        raise InvalidInputError(f"cannot read {path.name}: use a .npz, .safetensors or .npy file.\n{HINT}")
    try:
        if path.suffix in MAGIC:
            magic, what = MAGIC[path.suffix]
            with open(path, "rb") as f:
                if f.read(len(magic)) != magic:
                    raise InvalidInputError(f"{path} is not {what}; write it with numpy.save / numpy.savez.\n{HINT}")
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return {k: archive[k] for k in archive.files}
        if path.suffix == ".safetensors":
            from safetensors import SafetensorError
            from safetensors.numpy import load_file

            try:
                return load_file(str(path))
            except SafetensorError as exc:
                raise ValueError(f"not a safetensors file ({exc})") from None
        return {path.stem: np.load(path, allow_pickle=False)}
    except InvalidInputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        reason = str(exc).split(". If you trust")[0]  # numpy's advice to unpickle is not ours to give
        if "pickle" in reason or "Object arrays" in reason:
            reason = f"{reason}; pickled (object) arrays are never loaded: save plain numbers"
        raise InvalidInputError(f"cannot read {path}: {reason}. Re-save it with numpy.save/savez or "
                                f"safetensors.numpy.save_file.\n{HINT}") from None


def check_arrays(arrays: dict[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """The arrays of an embeddings file, checked with the file's own row numbers; x and y as float32,
    text_item as int64, test as bool."""
    out = {}
    for role in ("x", "y"):
        if role not in arrays:
            raise InvalidInputError(f"no array named {role!r} in {source} (found: {sorted(arrays)}).\n{HINT}")
        array = np.asarray(arrays[role])
        if array.ndim == 2 and array.shape[1] == 0:
            raise InvalidInputError(f"{role} in {source} has shape {array.shape}: no columns; pass one embedding "
                                    f"per row.\n{HINT}")
        if array.ndim == 2 and array.shape[0] == 0:
            raise InvalidInputError(f"{role} in {source} has no rows.\n{HINT}")
        # Row numbers in errors are the file's rows: nothing is split or shuffled yet.
        out[role] = as_embeddings(array, f"{role} in {source}")
    if "text_item" in arrays:
        out["text_item"] = _integers(arrays["text_item"], "text_item", source, len(out["y"]))
    if "test" in arrays:
        test = np.asarray(arrays["test"])
        if test.dtype != bool:
            if not (np.issubdtype(test.dtype, np.integer) or np.issubdtype(test.dtype, np.floating)) or \
                    not np.isin(test, (0, 1)).all():
                raise InvalidInputError(f"test in {source} must be a mask of 0/1 or booleans (dtype {test.dtype}).\n{HINT}")
        out["test"] = test.astype(bool)
    return out


def _integers(array: np.ndarray, role: str, source: str, length: int) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim != 1 or len(array) != length:
        raise InvalidInputError(f"{role} in {source} has shape {array.shape}; give one item index per text "
                                f"({length},).\n{HINT}")
    if np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidInputError(f"{role} in {source} has dtype {array.dtype}; give integer item indices.\n{HINT}")
    bad = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
    if bad.size:
        raise InvalidInputError(f"{role} in {source} holds non-integer values at row(s) {bad[:5].tolist()} "
                                f"(first: {array[bad[0]]!r}); give integer item indices.\n{HINT}")
    return array.astype(np.int64)


class Embeddings(ContentPinned, Dataset):
    """Paired embeddings from files (see ``LAYOUT``); ``name`` labels the leaderboard.

    ``sha256``: the content the files must have (one file: its sha256; several: the sha256 of the JSON
    ``{role: sha256}``, roles ``x``, ``y``, ``text_item``, ``test``). Its effective value, which
    ``get_params`` reports and result cells are keyed by, is the files' digest when it is left out: a
    re-run after the files changed runs new cells instead of reporting the old ones as done.
    """

    name = "embeddings"
    description = "Your own paired embeddings from .npz/.safetensors/.npy files"
    parameter_ranges = {"test_fraction": Range(low=0, high=1, open_low=True, open_high=True), "seed": Range(low=0)}

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

    def validate(self) -> None:
        """Called when a sweep is planned: read and check the files before any work, so that a bad file
        is one line up front, with the file's row numbers (checked once per content and parameters)."""
        super().validate()
        separate = [key for key in ("x", "y", "text_item", "test") if getattr(self, key) is not None]
        if self.path is not None and separate:
            raise InvalidParameterError(f"pass embeddings.path or the separate files (embeddings.x, embeddings.y, ...), "
                                        f"not both: {', '.join('embeddings.' + k for k in separate)} would be ignored.")
        if self.path is None and (self.x is None) != (self.y is None):
            given, missing = ("x", "y") if self.y is None else ("y", "x")
            raise InvalidParameterError(f"embeddings.{given} is set but embeddings.{missing} is not; pass both "
                                        f"(or one embeddings.path holding x and y).")
        _validated(json.dumps(self.get_params(), sort_keys=True))

    def load(self) -> DatasetSplits:
        arrays = self._arrays()
        if self.sha256 is not None and self.content_sha256() != self.sha256:
            raise InvalidInputError(
                f"the embeddings files hold other content than sha256 {self.sha256} (now: {self.content_sha256()}): "
                f"they changed since this run was planned, or embeddings.sha256 names other files. Run again "
                f"without embeddings.sha256 to benchmark the files as they are.")
        source = self.path or "the embeddings files"
        arrays = check_arrays(arrays, source)
        x, y = arrays["x"], arrays["y"]
        text_item = arrays.get("text_item")
        if text_item is None:
            if len(x) != len(y):
                raise InvalidInputError(f"{len(x)} items but {len(y)} texts and no text_item array to say which "
                                        f"text belongs to which item.\n{HINT}")
            text_item = np.arange(len(x))
        elif len(text_item) and (text_item.min() < 0 or text_item.max() >= len(x)):
            row = int(np.flatnonzero((text_item < 0) | (text_item >= len(x)))[0])
            raise InvalidInputError(f"text_item in {source} row {row} is {text_item[row]}, outside the items "
                                    f"0..{len(x) - 1}.\n{HINT}")
        ids = tuple(str(i) for i in range(len(x)))
        data = PairedData(x=x, y=y, text_item=text_item.astype(np.int64), item_ids=ids)
        if "test" not in arrays:
            return split_items(data, self.test_fraction, np.random.default_rng(self.seed))
        mask = arrays["test"]
        if mask.shape != (len(x),) or mask.all() or not mask.any():
            raise InvalidInputError(f"test must be a (n_items,) mask with both train and test items.\n{HINT}")
        return DatasetSplits(train=data.subset(np.flatnonzero(~mask)), test=data.subset(np.flatnonzero(mask)))

    def _arrays(self) -> dict[str, np.ndarray]:
        if self.path is not None:
            return read_arrays(Path(self.path))
        if self.x is None or self.y is None:
            raise DatasetNotFoundError(f"the embeddings dataset needs files.\n{HINT}")
        arrays = {}
        for key in ("x", "y", "text_item", "test"):
            value = getattr(self, key)
            if value is not None:
                found = read_arrays(Path(value))
                if len(found) != 1:
                    raise InvalidInputError(f"embeddings.{key}={value} holds {len(found)} arrays; pass a file with "
                                            f"one (a .npy file).\n{HINT}")
                arrays[key] = next(iter(found.values()))
        return arrays


@functools.lru_cache(maxsize=64)
def _validated(params: str) -> None:
    """Load once per effective parameters (they include the files' sha256): a valid file is read once
    at planning, not on every plan of the same sweep. Errors are not cached."""
    Embeddings(**json.loads(params)).load()
