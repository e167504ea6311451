"""Shared by the image-caption datasets: items from file lists, missing files counted, not fatal."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from alignbench import PairedData
from alignbench.cache import file_sha256
from alignbench.errors import DatasetNotFoundError

from .pinned import ContentPinned

log = logging.getLogger(__name__)


def data_root(explicit: str | None, env: str, layout: str, name: str) -> Path:
    """The dataset's root directory: the parameter, else ``$env``; otherwise an error showing the layout."""
    root = explicit or os.environ.get(env)
    if not root:
        raise DatasetNotFoundError(
            f"{name}: no data directory given. Pass --param {name}.data_dir=/path or set {env}.\n{layout}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetNotFoundError(f"{name}: {path} is not a directory.\n{layout}")
    return path


TEXT_FILES = (".json", ".txt", ".tsv", ".csv", ".jsonl")


def folder_digest(root: Path) -> str:
    """What a caption dataset's folder holds, for its cells' keys: every file's path under ``root``
    and size, and the bytes of its split, annotation and token files. Sizes, not bytes, of the images:
    reading a whole collection at planning would cost what decoding it does, and a resized or
    re-encoded copy has other sizes. Relative paths, so that the folder moved elsewhere keeps its
    cells; hidden files and folders are left out."""
    h = hashlib.sha256()
    seen: set[tuple[int, int]] = set()  # folders linked in twice (or in a cycle) are walked once
    for folder, folders, files in os.walk(root, followlinks=True):
        stat = os.stat(folder)
        if (stat.st_dev, stat.st_ino) in seen:
            folders[:] = []
            continue
        seen.add((stat.st_dev, stat.st_ino))
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        for name in sorted(f for f in files if not f.startswith(".")):
            path = Path(folder) / name
            try:
                size = path.stat().st_size
                content = file_sha256(path) if path.suffix.lower() in TEXT_FILES else ""
            except OSError:
                size, content = -1, ""
            h.update(f"{path.relative_to(root).as_posix()}\0{size}\0{content}\0".encode())
    return h.hexdigest()


class FolderPinned(ContentPinned):
    """:class:`ContentPinned` for a caption dataset read from a folder (``data_root()``): its digest is
    :func:`folder_digest` of the folder (None while there is none), so its cells follow the data
    wherever it is read from."""

    def data_root(self) -> Path:
        raise NotImplementedError

    def content_sha256(self) -> str | None:
        try:
            return folder_digest(self.data_root())
        except DatasetNotFoundError:
            return None  # load() says what is missing


def require_file(path: Path, name: str, layout: str) -> Path:
    if not path.is_file():
        raise DatasetNotFoundError(f"{name}: {path} is missing.\n{layout}")
    return path


def find_image_dir(root: Path, candidates: Sequence[str], name: str, layout: str) -> Path:
    for candidate in candidates:
        if (root / candidate).is_dir():
            return root / candidate
    raise DatasetNotFoundError(
        f"{name}: no image folder in {root} (looked for {', '.join(candidates)}).\n{layout}")


def captioned_split(records: list[tuple[str, Path, list[str]]], source: str, name: str, layout: str,
                    held_out: bool = False, allow_missing: bool = False) -> PairedData:
    """PairedData from ``(item_id, image_path, captions)`` records, dropping (and counting) the
    records whose image is not on disk or that have no caption. A ``held_out`` split with such
    records is an error unless ``allow_missing``: scored on fewer images, a row would stand for the
    benchmark's test split without being it."""
    if not records:
        raise DatasetNotFoundError(f"{name}: {source} lists no image of the {'held-out' if held_out else 'train'} "
                                   f"split; a split file must list both.\n{layout}")
    present = [r for r in records if r[1].is_file() and r[2]]
    missing = len(records) - len(present)
    if missing and held_out and not allow_missing:
        raise DatasetNotFoundError(
            f"{name}: {missing} of the {len(records)} held-out images listed in {source} are missing or uncaptioned, "
            f"so the test split would not be the benchmark's; restore them, or pass --param {name}.allow_missing=true "
            f"to score on the {len(present)} found.")
    if missing:
        log.warning("%s: %d of %d images listed in %s are missing or uncaptioned; they are skipped",
                    name, missing, len(records), source)
    if not present:
        raise DatasetNotFoundError(
            f"{name}: none of the {len(records)} images listed in {source} were found.\n{layout}")
    text_item = np.concatenate([np.full(len(captions), i) for i, (_, _, captions) in enumerate(present)])
    return PairedData(
        x=[str(path) for _, path, _ in present],
        y=[caption.strip() for _, _, captions in present for caption in captions],
        text_item=text_item,
        item_ids=tuple(item_id for item_id, _, _ in present),
    )


def subsample(records: list, limit: int | None, seed: int) -> list:
    """A seeded, order-preserving subset of at most ``limit`` records (all when None)."""
    if limit is None or limit >= len(records):
        return records
    keep = np.sort(np.random.default_rng(seed).permutation(len(records))[:limit])
    return [records[i] for i in keep]
