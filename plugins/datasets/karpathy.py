"""MS-COCO and Flickr captions, from the Karpathy split files or the official annotation files.

The Karpathy split is what everyone reports (COCO: 5,000 test images with 25,010 captions; Flickr30k:
1,000 test images). Every caption is kept: some COCO images have 6 or 7, and retrieval counts an
image as found when any of its captions is (so extra captions make image->text slightly easier, as
in every published number).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from alignbench import Dataset, DatasetSplits, Range
from alignbench.errors import DatasetNotFoundError

from .captioned_images import FolderPinned, captioned_split, data_root, find_image_dir, require_file, subsample

COCO_LAYOUT = """\
Expected layout (either form) under the COCO root:
  Karpathy split:  dataset_coco.json  +  train2014/  val2014/   (image folders named by each entry's filepath)
  Official:        annotations/captions_train2017.json  annotations/captions_val2017.json  +  train2017/  val2017/
Images and annotations: cocodataset.org (2014 or 2017 images, captions annotations);
the Karpathy split file: dataset_coco.json from Karpathy's NeuralTalk release (caption_datasets.zip)."""

FLICKR_LAYOUT = """\
Expected layout under the {name} root:
  dataset_{name}.json  (Karpathy split, from caption_datasets.zip)  +  the image folder ({folders})
{extra}"""


def inside(root: Path, relative: str | Path, source: Path) -> Path:
    """``root / relative``, or a one-line error when a listed name points outside ``root``
    (``../../etc/passwd``, an absolute path): a split file only names images within its folder.
    Judged on the names, not on where links lead: an image folder that is a link to another disk
    (``val2014 -> /data/coco/val2014``) is inside."""
    path = root / relative
    normal = os.path.normpath(relative)
    if Path(relative).is_absolute() or normal == ".." or normal.startswith(".." + os.sep):
        raise DatasetNotFoundError(f"{source} lists {str(relative)!r}, outside {root}; image names in a split file "
                                   f"must be relative paths inside the image folder.")
    return path


def sentence_text(sentence: dict) -> str:
    """A Karpathy sentence's text: its ``raw`` string, else its ``tokens`` joined (a list, tuple or
    array of strings; a null or missing field is none)."""
    raw, tokens = sentence.get("raw"), sentence.get("tokens")
    if isinstance(raw, str) and raw:
        return raw
    if tokens is None and raw in (None, ""):
        return ""
    if isinstance(tokens, (list, tuple, np.ndarray)) and all(isinstance(t, str) for t in tokens) and \
            raw in (None, ""):
        return " ".join(tokens)
    raise TypeError(f"the sentence {sentence!r} has no string 'raw' nor a list of string 'tokens'")


def karpathy_records(path: Path, image_root: Path, splits: set[str], use_filepath: bool):
    """``(item_id, image_path, captions)`` for the images of the given Karpathy splits."""
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["images"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DatasetNotFoundError(f"{path} is not a Karpathy split file ({exc}): it needs an 'images' list.") from None
    if not isinstance(entries, list):
        raise DatasetNotFoundError(f"{path} is not a Karpathy split file: its 'images' is a {type(entries).__name__}, "
                                   f"not a list of images.")
    records = []
    for index, entry in enumerate(entries):
        try:
            if entry.get("split") not in splits:
                continue
            relative = Path(entry.get("filepath", "")) / entry["filename"] if use_filepath else Path(entry["filename"])
            captions = [sentence_text(s) for s in entry.get("sentences", [])]
        except (AttributeError, KeyError, TypeError) as exc:
            raise DatasetNotFoundError(f"{path} image {index} is not a Karpathy image entry ({type(exc).__name__}: "
                                       f"{exc}): each needs 'filename', 'split' and a list of 'sentences' objects with "
                                       f"'raw' or 'tokens'.") from None
        records.append((str(relative), inside(image_root, relative, path), captions))
    return records


def official_coco_records(annotations: Path, image_dir: Path):
    try:
        data = json.loads(annotations.read_text(encoding="utf-8"))
        images = {image["id"]: image["file_name"] for image in data["images"]}
        captions: dict[int, list[str]] = {}
        for annotation in data["annotations"]:
            captions.setdefault(annotation["image_id"], []).append(annotation["caption"])
        for image_id, name in images.items():
            if not isinstance(image_id, int) or not isinstance(name, str):
                raise TypeError(f"image {image_id!r}: ids are integers and file names strings")
        for caption in (c for texts in captions.values() for c in texts):
            if not isinstance(caption, str):
                raise TypeError(f"the caption {caption!r} is no string")
    except (json.JSONDecodeError, AttributeError, KeyError, TypeError) as exc:
        raise DatasetNotFoundError(f"{annotations} is not a COCO captions file ({type(exc).__name__}: {exc}): it "
                                   f"needs 'images' (id, file_name) and 'annotations' (image_id, caption) lists.") from None
    return [(f"{image_dir.name}/{name}", inside(image_dir, name, annotations), captions.get(image_id, []))
            for image_id, name in sorted(images.items())]


class COCO(FolderPinned, Dataset):
    """MS-COCO captions. ``annotations="auto"`` uses the Karpathy split when ``dataset_coco.json`` is
    there (train + restval as the anchor pool, the 5k test split held out), else the official 2017
    files (train2017 as the anchor pool, val2017 held out). ``max_train_items`` caps the anchor pool
    (a seeded subset: encoding all 113k images on a CPU takes hours); ``max_test_items`` the test set.
    A held-out image that is missing is an error unless ``allow_missing`` (missing train images are
    skipped with a warning). ``sha256``: what the folder holds (see ``folder_digest``), filled in
    when left out, so that cells follow the data wherever it is read from.
    """

    name = "coco"
    description = "MS-COCO captions (Karpathy or official 2017 split)"
    parameter_ranges = {"max_train_items": Range(low=1), "max_test_items": Range(low=1), "seed": Range(low=0)}
    raw = True

    def __init__(self, data_dir: str | None = None, annotations: Literal["auto", "karpathy", "official"] = "auto",
                 max_train_items: int | None = 5000, max_test_items: int | None = None, seed: int = 0,
                 allow_missing: bool = False, sha256: str | None = None):
        self.data_dir = data_dir
        self.annotations = annotations
        self.max_train_items = max_train_items
        self.max_test_items = max_test_items
        self.seed = seed
        self.allow_missing = allow_missing
        self.sha256 = sha256

    def data_root(self) -> Path:
        return data_root(self.data_dir, "ALIGNBENCH_COCO_DIR", COCO_LAYOUT, self.name)

    def get_params(self) -> dict[str, Any]:
        """``annotations="auto"`` is reported as the form it finds (while the data directory can be
        read), so that a cell's key says whether it held out the Karpathy 5k test or val2017."""
        params = super().get_params()
        if params["annotations"] == "auto":
            try:
                params["annotations"] = self._form(data_root(self.data_dir, "ALIGNBENCH_COCO_DIR", COCO_LAYOUT, self.name))
            except DatasetNotFoundError:
                pass
        return params

    def _form(self, root: Path) -> str:
        if self.annotations != "auto":
            return self.annotations
        return "karpathy" if (root / "dataset_coco.json").is_file() else "official"

    def load(self) -> DatasetSplits:
        root = self.data_root()
        self.check_pinned(root)
        form = self._form(root)
        if form == "karpathy":
            split_file = require_file(root / "dataset_coco.json", self.name, COCO_LAYOUT)
            train = karpathy_records(split_file, root, {"train", "restval"}, use_filepath=True)
            test = karpathy_records(split_file, root, {"test"}, use_filepath=True)
            sources = (split_file, split_file)
        else:
            sources = tuple(require_file(root / "annotations" / f"captions_{s}2017.json", self.name, COCO_LAYOUT)
                            for s in ("train", "val"))
            train = official_coco_records(sources[0], find_image_dir(root, ["train2017"], self.name, COCO_LAYOUT))
            test = official_coco_records(sources[1], find_image_dir(root, ["val2017"], self.name, COCO_LAYOUT))
        return DatasetSplits(
            train=captioned_split(subsample(train, self.max_train_items, self.seed), str(sources[0]), self.name, COCO_LAYOUT),
            test=captioned_split(subsample(test, self.max_test_items, self.seed), str(sources[1]), self.name, COCO_LAYOUT,
                                 held_out=True, allow_missing=self.allow_missing),
        )


class _Flickr(FolderPinned, Dataset):
    raw = True
    parameter_ranges = {"max_train_items": Range(low=1), "max_test_items": Range(low=1), "seed": Range(low=0)}
    image_folders: tuple[str, ...] = ()
    env = ""

    def __init__(self, data_dir: str | None = None, max_train_items: int | None = 5000,
                 max_test_items: int | None = None, seed: int = 0, allow_missing: bool = False,
                 sha256: str | None = None):
        self.data_dir = data_dir
        self.max_train_items = max_train_items
        self.max_test_items = max_test_items
        self.seed = seed
        self.allow_missing = allow_missing
        self.sha256 = sha256

    def data_root(self) -> Path:
        return data_root(self.data_dir, self.env, self.layout(), self.name)

    def layout(self) -> str:
        return FLICKR_LAYOUT.format(name=self.name, folders=" or ".join(self.image_folders), extra=self.extra_layout)

    extra_layout = ""

    def load(self) -> DatasetSplits:
        root = self.data_root()
        self.check_pinned(root)
        split_file = root / f"dataset_{self.name}.json"
        images = find_image_dir(root, self.image_folders, self.name, self.layout())
        if split_file.is_file():
            train = karpathy_records(split_file, images, {"train", "restval"}, use_filepath=False)
            test = karpathy_records(split_file, images, {"test"}, use_filepath=False)
            sources = (str(split_file), str(split_file))
        else:
            train, test, sources = self.fallback_records(root, images)
        return DatasetSplits(
            train=captioned_split(subsample(train, self.max_train_items, self.seed), sources[0], self.name, self.layout()),
            test=captioned_split(subsample(test, self.max_test_items, self.seed), sources[1], self.name, self.layout(),
                                 held_out=True, allow_missing=self.allow_missing),
        )

    def fallback_records(self, root: Path, images: Path):
        """Records from another layout when the Karpathy file is absent; by default there is none."""
        raise DatasetNotFoundError(f"{self.name}: {root / f'dataset_{self.name}.json'} is missing.\n{self.layout()}")


class Flickr30k(_Flickr):
    """Flickr30k from the Karpathy split (29k train, 1k val, 1k test images; 5 captions each)."""

    name = "flickr30k"
    description = "Flickr30k captions (Karpathy split)"
    image_folders = ("flickr30k-images", "images", "Images")
    env = "ALIGNBENCH_FLICKR30K_DIR"


class Flickr8k(_Flickr):
    """Flickr8k from the Karpathy split, or from the original ``Flickr8k.token.txt`` with the
    ``Flickr_8k.trainImages.txt`` / ``Flickr_8k.testImages.txt`` lists."""

    name = "flickr8k"
    description = "Flickr8k captions (Karpathy split or the original token file)"
    image_folders = ("Flicker8k_Dataset", "Flickr8k_Dataset", "images", "Images")
    env = "ALIGNBENCH_FLICKR8K_DIR"
    extra_layout = ("or the original release: Flickr8k.token.txt + Flickr_8k.trainImages.txt + "
                    "Flickr_8k.testImages.txt + the image folder")

    def fallback_records(self, root: Path, images: Path):
        tokens = require_file(root / "Flickr8k.token.txt", self.name, self.layout())
        captions: dict[str, list[str]] = {}
        for line in tokens.read_text(encoding="utf-8").splitlines():
            if "\t" in line:
                key, caption = line.split("\t", 1)
                captions.setdefault(key.split("#")[0], []).append(caption)

        def listed(filename: str):
            listing = require_file(root / filename, self.name, self.layout())
            return [(name, inside(images, name, listing), captions.get(name, [])) for name in listing.read_text(encoding="utf-8").split()]

        return listed("Flickr_8k.trainImages.txt"), listed("Flickr_8k.testImages.txt"), (str(tokens), str(tokens))
