"""A folder of images with a ``metadata.jsonl`` or ``metadata.csv``: the Hugging Face ``imagefolder``
convention (a ``file_name`` column plus any others), captions in one or more columns."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from alignbench import Dataset, DatasetSplits
from alignbench.errors import DatasetNotFoundError

from .caption_sources import Record, SPLIT_RANGES, build_splits, content_id, guarded, row_captions
from .karpathy import inside
from .pinned import ContentPinned

log = logging.getLogger(__name__)

LAYOUT = ("Expected the Hugging Face imagefolder layout: DIR/metadata.jsonl (one JSON object a line) or "
          "DIR/metadata.csv with a file_name column (image paths relative to the metadata file) and caption "
          "column(s) (caption, captions, text, sentences, caption_1...: a string or a list of strings), an optional "
          "split column (train/restval = anchor pool, test = held out); or DIR/train/ and DIR/test/ each with its "
          "own metadata file.")
SPLIT_FOLDERS = ("train", "restval", "test", "val", "validation")
METADATA = ("metadata.jsonl", "metadata.csv")


CAPTION_COLUMNS = ("text", "texts", "sentence", "sentences", "raw")
NOT_CAPTIONS = re.compile(r"[_-](ids?|idx|index|lang|language|locale|source|author|count|len|length|score)$")


def is_caption_column(column: str) -> bool:
    """caption*, text(s), sentence(s), raw; not a column that describes a caption (caption_id,
    caption_lang...)."""
    name = column.lower()
    return name in CAPTION_COLUMNS or name.startswith("caption") and not NOT_CAPTIONS.search(name)


def read_metadata(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                rows.append(row := json.loads(line))
                if not isinstance(row, dict):
                    raise ValueError(f"line {number} is a JSON {type(row).__name__}, not an object with file_name "
                                     f"and caption")
        return rows
    rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    for row in rows:  # a list of captions in one CSV cell is written as JSON
        for key, value in row.items():
            if isinstance(value, str) and value.startswith("[") and value.endswith("]"):
                try:
                    row[key] = json.loads(value)
                except json.JSONDecodeError:
                    pass
    return rows


class ImageFolder(ContentPinned, Dataset):
    """Your own image-caption pairs as an image folder.

    ``path``: the folder. ``caption_columns``: the columns holding captions (default: every column
    named caption*, text(s), sentence(s) or raw, less caption_id, caption_lang and the like); an item's captions are all its non-empty cells there.
    ``split_column``: names each row's split, where present (else ``train/`` and ``test/`` folders
    name them, else a content hash does; see ``caption_sources``). ``max_train_items`` (default 5,000)
    and ``max_test_items`` take seeded subsets, as for COCO.

    ``sha256``: what the folder holds (the metadata files' bytes and every image's name, size and
    modification time); its effective value, which result cells are keyed by, is filled in from the
    folder when left out, so that a re-run after the folder changed runs new cells.
    """

    name = "image-folder"
    description = "a folder of images with metadata.jsonl / metadata.csv captions (HF imagefolder)"
    parameter_ranges = SPLIT_RANGES
    raw = True
    # 2: one item per image (rows of one image merged), caption_id-like columns and non-string
    # caption cells no longer read as captions.
    version = "2"

    def __init__(self, path: str | None = None, caption_columns: list[str] | None = None, split_column: str = "split",
                 test_fraction: float = 0.5, max_train_items: int | None = 5000, max_test_items: int | None = None,
                 seed: int = 0, sha256: str | None = None):
        self.path = path
        self.caption_columns = caption_columns
        self.split_column = split_column
        self.test_fraction = test_fraction
        self.max_train_items = max_train_items
        self.max_test_items = max_test_items
        self.seed = seed
        self.sha256 = sha256

    def metadata_files(self) -> list[tuple[Path, str | None]]:
        """``(metadata file, the split its folder names or None)``; one line naming the layout if none."""
        if self.path is None:
            raise DatasetNotFoundError(f"image-folder: no folder given; pass --param image-folder.path=DIR. {LAYOUT}")
        root = Path(self.path).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(f"image-folder: {root} is not a directory. {LAYOUT}")
        for name in METADATA:
            if (root / name).is_file():
                return [(root / name, None)]
        found = []
        for folder in (root / split for split in SPLIT_FOLDERS):
            files = [folder / name for name in METADATA if (folder / name).is_file()]
            if files:
                found.append((files[0], folder.name))
        if not found:
            raise DatasetNotFoundError(f"image-folder: no metadata.jsonl or metadata.csv in {root}. {LAYOUT}")
        return found

    def content_sha256(self) -> str | None:
        try:
            rows = self._rows()
        except (DatasetNotFoundError, OSError):
            return None  # load() says what is wrong
        # The metadata's bytes and each image's name inside the folder, size and modification time
        # (reading every image at planning would be a pass over the whole collection; the items'
        # ids, and so the cached embeddings, follow the pixels). Names are relative so that the
        # same folder moved elsewhere keeps its cells.
        h = hashlib.sha256()
        for metadata, _ in self.metadata_files():
            h.update(metadata.read_bytes())
        for name, image, _, _ in rows:  # names as listed: a linked image folder is hashed as any other
            stat = image.stat() if image.is_file() else None
            h.update(f"{name}\0{stat.st_size if stat else -1}\0{stat.st_mtime_ns if stat else -1}\0".encode())
        return h.hexdigest()

    def validate(self) -> None:
        """At planning: the layout and the columns, in one line each (images are read by load)."""
        super().validate()
        self._rows()

    def _rows(self) -> list[tuple[str, Path, list[str], str | None]]:
        """``(file name, image path, captions, split)`` for every metadata row."""
        out = []
        for metadata, folder_split in self.metadata_files():
            rows = guarded(lambda: read_metadata(metadata), self.name, str(metadata), LAYOUT)
            if not rows:
                continue
            columns = list(rows[0])
            if "file_name" not in columns:
                raise DatasetNotFoundError(f"image-folder: {metadata} has no file_name column (columns: "
                                           f"{', '.join(columns)}). {LAYOUT}")
            captions = self.caption_columns or [c for c in columns if is_caption_column(c)]
            missing = [c for c in captions if c not in columns]
            if not captions or missing:
                raise DatasetNotFoundError(
                    f"image-folder: {metadata} has no caption column {'(' + ', '.join(missing) + ') ' if missing else ''}"
                    f"among {', '.join(columns)}; name it with --param image-folder.caption_columns='[\"COLUMN\"]'. "
                    f"{LAYOUT}")
            prefix = f"{folder_split}/" if folder_split else ""
            for number, row in enumerate(rows, 1):
                name = str(row["file_name"])
                split = row.get(self.split_column) or folder_split
                out.append((prefix + name, inside(metadata.parent, name, metadata),
                            row_captions([row.get(column) for column in captions], f"{metadata} row {number}"),
                            str(split).strip().lower() if split else None))
        return out

    def load(self) -> DatasetSplits:
        self.check_pinned(self.path, "content")
        rows = self._rows()
        present = [r for r in rows if r[1].is_file()]
        if len(present) < len(rows):  # as for COCO: counted and skipped, not fatal
            missing = next(r[0] for r in rows if not r[1].is_file())
            log.warning("image-folder: %d of %d images listed in the metadata are missing (first: %s); they are "
                        "skipped", len(rows) - len(present), len(rows), missing)
        ids: dict[Path, str] = {}  # one row per caption lists an image several times: read it once
        for name, image, _, _ in present:
            if image not in ids:
                ids[image] = content_id(name, image.read_bytes())
        records = [Record(ids[image], str(image), tuple(captions), split) for _, image, captions, split in present]
        return build_splits(records, name=self.name, source=str(self.path), layout=LAYOUT,
                            test_fraction=self.test_fraction, seed=self.seed, max_train_items=self.max_train_items,
                            max_test_items=self.max_test_items)
