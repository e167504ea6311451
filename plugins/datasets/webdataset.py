"""WebDataset tar shards, as CLIP_benchmark writes them for retrieval: ``DIR/{train,test}/N.tar``, each
sample an image (``KEY.jpg``/``.jpeg``/``.png``/``.webp``) and its captions (``KEY.txt``, one caption a
line; or ``KEY.json`` with ``caption``/``captions``/``text``, as img2dataset writes; where a sample
has both, as img2dataset's do, the ``.txt`` alone)."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from alignbench import Dataset, DatasetSplits
from alignbench.errors import DatasetNotFoundError, InvalidInputError

from .caption_sources import Record, TarMember, SPLIT_RANGES, build_splits, caption_list, content_id, guarded
from .pinned import ContentPinned

LAYOUT = ("Expected WebDataset shards (CLIP_benchmark's retrieval format): DIR/train/*.tar and DIR/test/*.tar "
          "(or DIR/*.tar, split by content hash), uncompressed tar files whose samples are KEY.jpg (or .jpeg, .png, "
          ".webp) with KEY.txt (one caption a line) or KEY.json ({\"caption\": ...} or {\"captions\": [...]}).")
IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
SPLIT_FOLDERS = ("train", "restval", "test", "val", "validation")
JSON_CAPTIONS = ("captions", "caption", "text", "sentences", "raw")


def split_name(member: str) -> tuple[str, str]:
    """WebDataset's ``(key, extension)``: the key ends at the first dot of the file name."""
    folder, _, base = member.rpartition("/")
    stem, _, extension = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), extension.lower()


def json_captions(data: bytes) -> list[str]:
    meta = json.loads(data)
    if isinstance(meta, dict):
        for key in JSON_CAPTIONS:
            if key in meta:
                return caption_list(meta[key])
        return []
    return caption_list(meta)


def shard_records(shard: Path, split: str | None, label: str) -> list[Record]:
    """The samples of one shard, read once in order (streamed: only the captions are kept, each image
    is referenced by its byte range in the shard and hashed for its id)."""
    images: dict[str, tuple[TarMember, bytes]] = {}
    # A sample's captions come from its .txt, else from its .json: img2dataset writes the caption into
    # both, and webdataset's writer stores a sample's files in sorted order (.json before .txt).
    txt_captions: dict[str, list[str]] = {}
    json_captions_of: dict[str, list[str]] = {}
    order: dict[str, None] = {}  # the samples' keys, in the order their first file comes
    with tarfile.open(shard, "r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, extension = split_name(member.name)
            order.setdefault(key)
            if extension in IMAGE_EXTENSIONS and key not in images:
                data = tar.extractfile(member).read()
                images[key] = (TarMember(str(shard), member.offset_data, member.size), data)
            elif extension == "txt":
                txt_captions.setdefault(key, []).extend(
                    line.strip() for line in tar.extractfile(member).read().decode("utf-8").splitlines() if line.strip())
            elif extension == "json" and key not in json_captions_of:
                try:
                    json_captions_of[key] = json_captions(tar.extractfile(member).read())
                except InvalidInputError as exc:
                    raise InvalidInputError(f"{shard} {member.name}: {exc}") from None
    return [Record(content_id(f"{label}/{key}", images[key][1]), images[key][0],
                   tuple(txt_captions.get(key) or json_captions_of.get(key, ())), split)
            for key in order if key in images]


class WebDataset(ContentPinned, Dataset):
    """Image-caption pairs in WebDataset tar shards (see the module docstring for the layout).

    ``path``: the folder of shards. Shards in ``train/`` / ``restval/`` are the anchor pool, in
    ``test/`` held out (others, e.g. ``val/``, are left out); shards directly in ``path`` are split by
    content hash (``test_fraction``, ``seed``). ``max_train_items`` (default 5,000) and
    ``max_test_items`` take seeded subsets, as for COCO. Images stay in the shards: each is read
    when it is encoded. ``sha256``: what the shards hold (names, sizes and modification times),
    filled in when left out, so that result cells change when the shards do.
    """

    name = "webdataset"
    description = "WebDataset tar shards of images + txt/json captions (CLIP_benchmark's format)"
    parameter_ranges = SPLIT_RANGES
    raw = True
    # 2: one item per image (rows of one image merged), caption_id-like columns and non-string
    # caption cells no longer read as captions.
    version = "2"

    def __init__(self, path: str | None = None, test_fraction: float = 0.5, max_train_items: int | None = 5000,
                 max_test_items: int | None = None, seed: int = 0, sha256: str | None = None):
        self.path = path
        self.test_fraction = test_fraction
        self.max_train_items = max_train_items
        self.max_test_items = max_test_items
        self.seed = seed
        self.sha256 = sha256

    def shards(self) -> list[tuple[Path, str | None]]:
        """``(shard, the split its folder names or None)``, in name order (numbers numerically)."""
        if self.path is None:
            raise DatasetNotFoundError(f"webdataset: no folder given; pass --param webdataset.path=DIR. {LAYOUT}")
        root = Path(self.path).expanduser()
        if not root.is_dir():
            raise DatasetNotFoundError(f"webdataset: {root} is not a directory. {LAYOUT}")

        def ordered(folder: Path) -> list[Path]:
            return sorted(folder.glob("*.tar"), key=lambda p: (len(p.stem), p.stem))

        found = [(shard, folder.name) for folder in (root / s for s in SPLIT_FOLDERS) if folder.is_dir()
                 for shard in ordered(folder)]
        found = found or [(shard, None) for shard in ordered(root)]
        if not found:
            compressed = sorted(p.name for p in root.rglob("*.tar.gz"))[:1] + sorted(p.name for p in root.rglob("*.tgz"))[:1]
            hint = f" ({compressed[0]} is compressed: uncompress it, images are read from the tar by offset)" if compressed else ""
            raise DatasetNotFoundError(f"webdataset: no .tar shards in {root}{hint}. {LAYOUT}")
        return found

    def content_sha256(self) -> str | None:
        try:
            shards = self.shards()
        except DatasetNotFoundError:
            return None
        h = hashlib.sha256()
        for shard, _ in shards:
            stat = shard.stat()
            h.update(f"{shard.relative_to(Path(self.path).expanduser())}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
        return h.hexdigest()

    def validate(self) -> None:
        super().validate()
        self.shards()

    def load(self) -> DatasetSplits:
        self.check_pinned(self.path, "shards")
        root = Path(self.path).expanduser() if self.path else None
        records = []
        for shard, split in self.shards():
            label = str(shard.relative_to(root))
            records += guarded(lambda: shard_records(shard, split, label), self.name, str(shard), LAYOUT,
                               (tarfile.TarError,))
        if not records:
            raise DatasetNotFoundError(f"webdataset: the shards in {self.path} hold no image samples. {LAYOUT}")
        return build_splits(records, name=self.name, source=str(self.path), layout=LAYOUT,
                            test_fraction=self.test_fraction, seed=self.seed, max_train_items=self.max_train_items,
                            max_test_items=self.max_test_items)
