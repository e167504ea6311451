"""Image-caption fixtures in the formats people keep their data in, written by the tests from REAL
photos (scikit-image's bundled images, captioned by their own docstrings): an image folder with
metadata.jsonl / metadata.csv, a Hugging Face dataset (save_to_disk and parquet, written by the
datasets library itself), and WebDataset tar shards as CLIP_benchmark writes them."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import numpy as np

PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "horse", "moon", "rocket", "page", "clock", "brick",
          "grass")


def photos(n: int = 12) -> list[tuple[str, bytes, list[str]]]:
    """``(name, JPEG or PNG bytes, captions)`` for ``n`` real photos, shrunk to 48 px: the docstring's
    caption and a second one naming the photo."""
    import skimage.data
    from PIL import Image

    out = []
    for i, name in enumerate(PHOTOS[:n]):
        loader = getattr(skimage.data, name)
        image = Image.fromarray(np.asarray(loader()))
        image.thumbnail((48, 48))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG" if i % 3 == 0 else "JPEG")
        caption = loader.__doc__.strip().splitlines()[0].strip()
        out.append((f"{name}.{'png' if i % 3 == 0 else 'jpg'}", buffer.getvalue(), [caption, f"a photo: {name}"]))
    return out


def split_for(i: int) -> str:
    """Karpathy-style split names: mostly train, some restval, a val row (left out) and test rows."""
    return ["train", "test", "train", "restval", "test", "val"][i % 6]


def image_folder(root: Path, form: str = "jsonl", splits: str = "column") -> Path:
    """``form``: jsonl (captions as a list) or csv (caption_1, caption_2 columns). ``splits``: column
    (a split column), folders (train/, restval/, val/ and test/, each with its metadata), or none."""
    data = photos()
    groups: dict[str, list] = {}
    for i, (name, content, captions) in enumerate(data):
        split = split_for(i)
        folder = split if splits == "folders" else ""
        (root / folder / "images").mkdir(parents=True, exist_ok=True)
        (root / folder / "images" / name).write_bytes(content)
        row = {"file_name": f"images/{name}"}
        if form == "jsonl":
            row["captions"] = captions
        else:
            row["caption_1"], row["caption_2"] = captions
        if splits == "column":
            row["split"] = split
        groups.setdefault(folder, []).append(row)
    for folder, rows in groups.items():
        if form == "jsonl":
            (root / folder / "metadata.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        else:
            with open(root / folder / "metadata.csv", "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
    return root


def hf_dataset(root: Path, form: str = "dict") -> Path:
    """Written by the datasets library: ``dict`` (a DatasetDict, save_to_disk), ``single`` (one
    Dataset with a split column, save_to_disk), ``parquet`` (the hub's data/SPLIT-*.parquet) or
    ``one-hub-split`` (every row in data/test-*.parquet, each row's split in its column) or
    ``dict-blank-column`` (a DatasetDict whose split column holds only blanks)."""
    import datasets

    data = photos()
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Sequence(datasets.Value("string")),
                                  "split": datasets.Value("string")})

    def build(rows):
        return datasets.Dataset.from_dict({"image": [{"bytes": c, "path": None} for _, c, _ in rows],
                                           "caption": [caps for _, _, caps in rows],
                                           "split": [" " if form == "dict-blank-column" else s
                                                     for s in (split_for(data.index(r)) for r in rows)]},
                                          features=features)

    if form == "single":
        build(data).save_to_disk(str(root))
        return root
    if form == "one-hub-split":  # every row in one hub split, the real split in the column
        (root / "data").mkdir(parents=True)
        build(data).to_parquet(str(root / "data" / "test-00000-of-00001.parquet"))
        return root
    by_split = {s: [r for i, r in enumerate(data) if split_for(i) == s] for s in ("train", "test")}
    if form in ("dict", "dict-blank-column"):
        datasets.DatasetDict({s: build(rows) for s, rows in by_split.items()}).save_to_disk(str(root))
    else:
        (root / "data").mkdir(parents=True)
        for s, rows in by_split.items():
            build(rows).to_parquet(str(root / "data" / f"{s}-00000-of-00001.parquet"))
    return root


def webdataset_shards(root: Path, captions: str = "txt", splits: bool = True, per_shard: int = 3) -> Path:
    """CLIP_benchmark's retrieval layout: ``root/{train,restval,val,test}/N.tar`` with ``nshards.txt``; samples
    ``sNNNNNNN.jpg`` (or .png) + ``.txt`` (one caption a line) or ``.json`` ({"captions": [...]}); with
    ``captions="img2dataset"`` both, as img2dataset writes them (the .json holding the first caption
    and the sample's metadata), each sample's files in sorted order, as webdataset's TarWriter stores them."""
    data = photos()
    groups: dict[str, list] = {}
    for i, item in enumerate(data):
        split = split_for(i) if splits else ""
        groups.setdefault(split, []).append((i, item))
    for split, samples in groups.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        shards = [samples[k:k + per_shard] for k in range(0, len(samples), per_shard)]
        for n, shard in enumerate(shards):
            with tarfile.open(root / split / f"{n}.tar", "w") as tar:
                for i, (name, content, caps) in shard:
                    key = f"s{i:07d}"
                    files = {name.rsplit(".", 1)[1]: content}
                    if captions in ("txt", "img2dataset"):
                        files["txt"] = "\n".join(caps).encode()
                    if captions == "json":
                        files["json"] = json.dumps({"captions": caps}).encode()
                    if captions == "img2dataset":
                        files["json"] = json.dumps({"caption": caps[0], "key": key, "status": "success"}).encode()
                    for extension, payload in sorted(files.items()):
                        info = tarfile.TarInfo(f"{key}.{extension}")
                        info.size = len(payload)
                        tar.addfile(info, io.BytesIO(payload))
        (root / split / "nshards.txt").write_text(f"{len(shards)}\n")
    return root


def pixels(item):
    from alignbench_plugins.encoders.images import to_rgb

    return np.asarray(to_rgb(item))


def check_coco_rules(splits):
    """train + restval are the anchor pool, test is held out, val is left out; two captions an image;
    each image reads back as the photo its captions describe; ids end in a 16-digit content hash."""
    data = photos()
    by_caption = {caps[0]: (name, content) for name, content, caps in data}
    train = {data[i][2][0] for i in range(len(data)) if split_for(i) in ("train", "restval")}
    test = {data[i][2][0] for i in range(len(data)) if split_for(i) == "test"}
    for part, expected in ((splits.train, train), (splits.test, test)):
        firsts = {part.y[part.texts_of(i)[0]] for i in range(part.n_items)}
        assert firsts == expected
        assert part.n_texts == 2 * part.n_items
        for i, item in enumerate(part.x):
            _, content = by_caption[part.y[part.texts_of(i)[0]]]
            np.testing.assert_array_equal(pixels(item), pixels(content))
            assert len(part.item_ids[i].rpartition("@")[2]) == 16
