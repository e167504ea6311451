"""A Hugging Face dataset on disk: saved with ``save_to_disk`` (a Dataset or a DatasetDict), or
parquet files (the hub's ``data/train-00000-of-00001.parquet`` layout, split folders, or one folder)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from alignbench import Dataset, DatasetSplits
from alignbench.errors import DatasetNotFoundError, InvalidInputError

from .caption_sources import ImageRef, Record, SPLIT_RANGES, build_splits, content_id, guarded, row_captions
from .image_folder import is_caption_column
from .pinned import ContentPinned

LAYOUT = ("Expected a Hugging Face dataset on disk: a save_to_disk folder (dataset_info.json + state.json + "
          "data-*.arrow; or dataset_dict.json + one such folder per split), or parquet files (DIR/*.parquet, "
          "DIR/SPLIT/*.parquet or DIR/data/SPLIT-*.parquet), with an image column (the Image feature, image bytes "
          "or a path) and caption column(s) (a string or a list of strings); train/restval splits are the anchor "
          "pool, test is held out.")
SPLITS = ("train", "restval", "test", "val", "validation")


class ArrowImage(ImageRef):
    """One image cell of an Arrow table (memory-mapped): the Image feature's ``{bytes, path}`` struct,
    raw bytes, or a path; read when it is encoded."""

    __slots__ = ("column", "row", "root")

    def __init__(self, column, row: int, root: Path):
        self.column, self.row, self.root = column, row, root

    def __repr__(self) -> str:
        return f"row {self.row} of the image column in {self.root}"

    def read_bytes(self) -> bytes:
        value = self.column[self.row].as_py()
        if isinstance(value, dict):
            if value.get("bytes"):
                return value["bytes"]
            value = value.get("path")
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, str):
            path = Path(value) if Path(value).is_absolute() else self.root / value
            return path.read_bytes()
        raise InvalidInputError(f"hf-dataset: row {self.row} holds no image ({type(value).__name__}). {LAYOUT}")


def require_pyarrow():
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise DatasetNotFoundError("hf-dataset needs pyarrow (and datasets for save_to_disk folders): "
                                   "pip install 'alignbench[hf]'") from None
    return pyarrow


def split_of(path: Path, root: Path) -> str | None:
    """The split a parquet file's folder or name gives (``train/x.parquet``, ``data/test-0000.parquet``,
    ``data/dev-00000-of-00001.parquet``: any name in the hub's ``NAME-00000-of-00001`` form, so that a
    split alignbench does not use is left out rather than unsplit)."""
    for part in (*path.relative_to(root).parts[:-1], path.name.split("-")[0].split(".")[0]):
        if part.lower() in SPLITS:
            return part.lower()
    hub = re.fullmatch(r"(.+?)-\d+-of-\d+\.parquet", path.name)
    return hub.group(1).lower() if hub else None


class HFDataset(ContentPinned, Dataset):
    """Image-caption pairs from a Hugging Face dataset on disk (see LAYOUT).

    ``path``: the folder. ``image_column``: the image column (default ``image``). ``caption_columns``:
    the caption columns (default: every column named caption*, text, sentence(s) or raw).
    ``split_column``: a column naming each row's split; where a row has one it comes before the split
    of its DatasetDict key or parquet file name (a hub dataset may hold every row in one split and the
    real split in a column). Otherwise, and as for COCO: see ``caption_sources``.
    ``sha256``: the files' names, sizes and modification times, filled in when left out.
    """

    name = "hf-dataset"
    description = "a Hugging Face dataset saved with save_to_disk, or parquet files"
    parameter_ranges = SPLIT_RANGES
    raw = True
    # 2: one item per image (rows of one image merged), caption_id-like columns and non-string
    # caption cells no longer read as captions.
    version = "2"

    def __init__(self, path: str | None = None, image_column: str = "image", caption_columns: list[str] | None = None,
                 split_column: str = "split", test_fraction: float = 0.5, max_train_items: int | None = 5000,
                 max_test_items: int | None = None, seed: int = 0, sha256: str | None = None):
        self.path = path
        self.image_column = image_column
        self.caption_columns = caption_columns
        self.split_column = split_column
        self.test_fraction = test_fraction
        self.max_train_items = max_train_items
        self.max_test_items = max_test_items
        self.seed = seed
        self.sha256 = sha256

    def root(self) -> Path:
        if self.path is None:
            raise DatasetNotFoundError(f"hf-dataset: no folder given; pass --param hf-dataset.path=DIR. {LAYOUT}")
        root = Path(self.path).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(f"hf-dataset: {root} is not a directory. {LAYOUT}")
        return root

    def form(self) -> str:
        root = self.root()
        if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
            return "save_to_disk"
        if any(root.rglob("*.parquet")):
            return "parquet"
        raise DatasetNotFoundError(f"hf-dataset: {root} is neither a save_to_disk folder nor holds parquet files. "
                                   f"{LAYOUT}")

    def content_sha256(self) -> str | None:
        try:
            root = self.root()
        except DatasetNotFoundError:
            return None
        h = hashlib.sha256()
        for file in sorted(p for p in root.rglob("*") if p.is_file()):
            stat = file.stat()
            h.update(f"{file.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        return h.hexdigest()

    def validate(self) -> None:
        super().validate()
        for table, _ in self.tables():
            self.columns(table)

    def tables(self) -> list[tuple[Any, str | None]]:
        """``(pyarrow table, split or None)`` per split or file; memory-mapped where the format allows."""
        pyarrow = require_pyarrow()
        root, form = self.root(), self.form()
        if form == "parquet":
            files = sorted(root.rglob("*.parquet"))
            return [(guarded(lambda: pyarrow.parquet.read_table(f, memory_map=True), self.name, str(f), LAYOUT,
                             (pyarrow.ArrowException,)), split_of(f, root)) for f in files]
        try:
            import datasets
        except ImportError:
            raise DatasetNotFoundError("hf-dataset: a save_to_disk folder needs the datasets package: "
                                       "pip install 'alignbench[hf]'") from None
        loaded = guarded(lambda: datasets.load_from_disk(str(root)), self.name, str(root), LAYOUT,
                         (pyarrow.ArrowException, FileNotFoundError))
        parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
        return [(part.with_format("arrow")[:], split.lower() if split else None) for split, part in parts]

    def columns(self, table) -> list[str]:
        names = list(table.column_names)
        if self.image_column not in names:
            raise DatasetNotFoundError(f"hf-dataset: no image column {self.image_column!r} (columns: {', '.join(names)});"
                                       f" name it with --param hf-dataset.image_column=COLUMN. {LAYOUT}")
        captions = self.caption_columns or [c for c in names if is_caption_column(c)]
        missing = [c for c in captions if c not in names]
        if not captions or missing:
            raise DatasetNotFoundError(
                f"hf-dataset: no caption column {'(' + ', '.join(missing) + ') ' if missing else ''}among "
                f"{', '.join(names)}; name it with --param hf-dataset.caption_columns='[\"COLUMN\"]'. {LAYOUT}")
        return captions

    def load(self) -> DatasetSplits:
        self.check_pinned(self.path)
        root, records = self.root(), []
        for t, (table, split) in enumerate(self.tables()):
            captions = self.columns(table)
            images = table.column(self.image_column)
            texts = {c: table.column(c).to_pylist() for c in captions}
            # A row's own split column, where it has one, comes before the split its file or DatasetDict
            # key names: a hub dataset may keep every row in one split ("test") and the Karpathy split in
            # a column, as nlphuji/flickr30k does.
            column = (table.column(self.split_column).to_pylist() if self.split_column in table.column_names
                      else [None] * table.num_rows)
            splits = [(own.strip() if isinstance(own, str) else own) or split for own in column]
            for row in range(table.num_rows):
                image = ArrowImage(images, row, root)
                data = image.read_bytes()
                records.append(Record(content_id(f"{split or t}/{row}", data), image,
                                      tuple(row_captions([texts[column][row] for column in captions],
                                                         f"{self.path} table {t} row {row}")),
                                      str(splits[row]).strip().lower() if splits[row] else None))
        return build_splits(records, name=self.name, source=str(self.path), layout=LAYOUT,
                            test_fraction=self.test_fraction, seed=self.seed, max_train_items=self.max_train_items,
                            max_test_items=self.max_test_items)
