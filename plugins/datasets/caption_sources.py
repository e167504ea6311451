"""Shared by the image-caption datasets read from the formats people keep them in (an image folder
with a metadata file, a Hugging Face dataset, WebDataset shards): images referenced, not loaded,
ids keyed by content, and COCO's split rules.

Split rules (as COCO's Karpathy split): where the data names splits, ``train`` and ``restval`` are the
anchor pool, ``test`` is held out, and any other split (``val``, ``validation``, ``dev``) is left out.
Where it names none, an item is held out when a hash of its content and ``seed`` falls below
``test_fraction``: adding or removing images never moves the others between splits. Then, as for
COCO, ``max_train_items`` / ``max_test_items`` take a seeded subset.

Item ids are ``NAME@SHA`` with the first 16 hex digits of the image bytes' sha256, so that embeddings
cached for one folder are never reused for other images under the same file names.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from alignbench import DatasetSplits, PairedData, Range
from alignbench.errors import DatasetNotFoundError, InvalidInputError, InvalidParameterError

from .captioned_images import subsample
from .karpathy import sentence_text

log = logging.getLogger(__name__)

TRAIN_SPLITS = ("train", "restval")
TEST_SPLITS = ("test",)


def content_id(name: str, data: bytes) -> str:
    return f"{name}@{hashlib.sha256(data).hexdigest()[:16]}"


class ImageRef:
    """An image that is read when it is encoded (``read_bytes()``, as ``pathlib.Path`` has), so that a
    split of a large collection holds references, not pixels. ``tobytes()`` is its content for
    conformance checks that compare items."""

    def read_bytes(self) -> bytes:
        raise NotImplementedError

    def tobytes(self) -> bytes:
        return self.read_bytes()


@dataclass(frozen=True)
class TarMember(ImageRef):
    """A file inside an uncompressed tar shard: its data's byte offset and size."""

    shard: str
    offset: int
    size: int

    def read_bytes(self) -> bytes:
        with open(self.shard, "rb") as f:
            f.seek(self.offset)
            return f.read(self.size)


@dataclass(frozen=True)
class Record:
    """One image with its captions: ``item`` is what an encoder reads (a path or an ImageRef)."""

    item_id: str
    item: Any
    captions: tuple[str, ...]
    split: str | None = None


def caption_list(value: Any) -> list[str]:
    """Captions from a cell: a string (one caption), a Karpathy-style sentence (``{"raw": ...}`` or
    ``{"tokens": [...]}``, read as the Karpathy loader reads it), a
    list of these, or empty (None, NaN, ""). Anything else (a number, bytes) is no caption: an
    InvalidInputError, rather than its ``str()`` taken for one."""
    if value is None or (isinstance(value, float) and value != value):
        return []
    if isinstance(value, str):
        return [value.strip()] if value.strip() else []
    if isinstance(value, (list, tuple, np.ndarray)):
        return [c for v in value for c in caption_list(v)]
    if isinstance(value, dict) and ("raw" in value or "tokens" in value):
        try:
            return caption_list(sentence_text(value))
        except TypeError:
            pass
    raise InvalidInputError(f"a caption cell holds {type(value).__name__} {str(value)[:60]!r}; captions are strings "
                            f"or lists of strings: name the caption columns (caption_columns) if another column "
                            f"was taken for one.")


def row_captions(cells: Sequence[Any], where: str) -> list[str]:
    """:func:`caption_list` over one row's caption cells; an error names the row (``where``)."""
    try:
        return [c for cell in cells for c in caption_list(cell)]
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from None


def hashed_test(item_id: str, seed: int, test_fraction: float) -> bool:
    """Held out or not, from the content part of the id (``NAME@SHA``) and the seed: the same image
    under two names lands in one split, never both."""
    digest = hashlib.sha256(f"{seed}\0{item_id.rpartition('@')[2]}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < test_fraction


# The parameters every caption-source dataset takes, and their possible values.
SPLIT_RANGES = {"test_fraction": Range(low=0, high=1, open_low=True, open_high=True), "max_train_items": Range(low=1),
                "max_test_items": Range(low=1), "seed": Range(low=0)}


def check_test_fraction(name: str, test_fraction: float) -> None:
    if not 0 < test_fraction < 1:
        raise InvalidParameterError(f"{name}.test_fraction must be between 0 and 1 (exclusive), got {test_fraction}.")


def build_splits(records: Sequence[Record], *, name: str, source: str, layout: str, test_fraction: float,
                 seed: int, max_train_items: int | None, max_test_items: int | None) -> DatasetSplits:
    """COCO's split rules (see the module docstring) over ``records``, one item per image
    (:func:`one_per_image`)."""
    check_test_fraction(name, test_fraction)
    records = one_per_image(records, name, source)
    captioned = [r for r in records if r.captions]
    if len(captioned) < len(records):
        log.warning("%s: %d of %d images in %s have no caption; they are skipped", name,
                    len(records) - len(captioned), len(records), source)
    named = [r for r in captioned if r.split is not None]
    if named and len(named) < len(captioned):
        unnamed = next(r.item_id for r in captioned if r.split is None)
        raise DatasetNotFoundError(f"{name}: {len(captioned) - len(named)} of {len(captioned)} images in {source} "
                                   f"have no split while the others have one (first: {unnamed}); give every image "
                                   f"a split, or none (a content hash then splits them).")
    if named:
        train = [r for r in named if r.split in TRAIN_SPLITS]
        test = [r for r in named if r.split in TEST_SPLITS]
        other = sorted({r.split for r in named} - set(TRAIN_SPLITS) - set(TEST_SPLITS))
        if other:
            log.info("%s: splits %s are left out (train and restval are the anchor pool, test is held out)",
                     name, ", ".join(other))
    else:
        test = [r for r in captioned if hashed_test(r.item_id, seed, test_fraction)]
        train = [r for r in captioned if not hashed_test(r.item_id, seed, test_fraction)]
    for split, part in (("train", train), ("test", test)):
        if not part:
            raise DatasetNotFoundError(f"{name}: no captioned {split} images in {source} "
                                       f"({len(captioned)} captioned in all). {layout}")
    return DatasetSplits(train=paired(subsample(train, max_train_items, seed)),
                         test=paired(subsample(test, max_test_items, seed)))


def one_per_image(records: Sequence[Record], name: str, source: str) -> list[Record]:
    """One record per image (the content part of its ``NAME@SHA`` id), holding the captions of every
    row that shows it, in order: one row per caption (Flickr8k's ``image,caption`` CSV) is one item
    with five captions, not five items of one, and one image under two names is one item. Rows of one
    name in two splits are an error; the same pixels under other names in two splits are kept in the
    held-out split only (a warning), so that no test image is also an anchor."""
    groups: dict[str, list[Record]] = {}
    for record in records:
        groups.setdefault(record.item_id.rpartition("@")[2], []).append(record)
    if len(groups) == len(records):
        return list(records)
    out, moved = [], 0
    for group in groups.values():
        splits = sorted({str(r.split) for r in group})
        if len(splits) > 1:
            names = {r.item_id for r in group}
            if len(names) < len(group) and any(
                    len({str(r.split) for r in group if r.item_id == n}) > 1 for n in names):
                raise DatasetNotFoundError(f"{name}: {source} lists the image {group[0].item_id} in the splits "
                                           f"{', '.join(splits)}; give each image one split.")
            # One picture under several names in several splits (scraped collections repeat images):
            # in the held-out split only, so that no test image is also an anchor.
            held = [r for r in group if r.split in TEST_SPLITS] or group
            moved += 1
            group = held
        out.append(replace(group[0], captions=tuple(c for r in group for c in r.captions)))
    log.info("%s: %d rows in %s show %d distinct images; each image's captions are merged into one item",
             name, len(records), source, len(out))
    if moved:
        log.warning("%s: %d images in %s appear under other names in more than one split; each is kept in the "
                    "held-out split only (with the captions listed there)", name, moved, source)
    return out


def paired(records: Sequence[Record]) -> PairedData:
    return PairedData(x=[r.item for r in records], y=[c for r in records for c in r.captions],
                      text_item=np.repeat(np.arange(len(records)), [len(r.captions) for r in records]),
                      item_ids=tuple(r.item_id for r in records))


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def guarded(read: Callable[[], Any], name: str, what: str, layout: str, errors: tuple = ()) -> Any:
    """``read()``, with a file that cannot be parsed reported in one line naming the layout."""
    try:
        return read()
    except (ValueError, KeyError, TypeError, OSError, *errors) as exc:
        raise DatasetNotFoundError(f"{name}: cannot read {what} ({first_line(exc)}). {layout}") from None
