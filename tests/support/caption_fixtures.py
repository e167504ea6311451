"""Small datasets in the exact official on-disk formats, written by the tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_image(path: Path, seed: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(path)


def captions(i: int, n: int = 5) -> list[dict]:
    return [{"raw": f"Picture {i}, caption {c}.", "tokens": ["picture", str(i), "caption", str(c)]} for c in range(n)]


def karpathy_coco(root: Path, n_train=8, n_restval=2, n_val=2, n_test=6, missing=()) -> Path:
    """dataset_coco.json + train2014/ and val2014/, as in Karpathy's release. Item 0 has 7 captions."""
    images, i = [], 0
    for split, count in (("train", n_train), ("restval", n_restval), ("val", n_val), ("test", n_test)):
        for _ in range(count):
            folder = "train2014" if split == "train" else "val2014"
            name = f"COCO_{folder}_{i:012d}.jpg"
            if i not in missing:
                write_image(root / folder / name, i)
            images.append({"filepath": folder, "filename": name, "split": split, "cocoid": i, "imgid": i,
                           "sentences": captions(i, 7 if i == 0 else 5)})
            i += 1
    (root / "dataset_coco.json").write_text(json.dumps({"images": images, "dataset": "coco"}))
    return root


def official_coco(root: Path, n_train=6, n_val=4) -> Path:
    """annotations/captions_{train,val}2017.json + train2017/ and val2017/."""
    (root / "annotations").mkdir(parents=True)
    i = 0
    for split, count in (("train", n_train), ("val", n_val)):
        images, annotations = [], []
        for _ in range(count):
            name = f"{i:012d}.jpg"
            write_image(root / f"{split}2017" / name, i)
            images.append({"id": i, "file_name": name, "height": 40, "width": 48})
            annotations += [{"id": 10 * i + c, "image_id": i, "caption": s["raw"]} for c, s in enumerate(captions(i))]
            i += 1
        (root / "annotations" / f"captions_{split}2017.json").write_text(
            json.dumps({"images": images, "annotations": annotations}))
    return root


def karpathy_flickr(root: Path, name: str, folder: str, n_train=6, n_test=4) -> Path:
    images = []
    for i in range(n_train + n_test):
        filename = f"{1000 + i}.jpg"
        write_image(root / folder / filename, i)
        images.append({"filename": filename, "split": "train" if i < n_train else "test", "sentences": captions(i)})
    (root / f"dataset_{name}.json").write_text(json.dumps({"images": images, "dataset": name}))
    return root


def flickr8k_original(root: Path, n_train=5, n_test=3) -> Path:
    """Flickr8k.token.txt + Flickr_8k.{train,test}Images.txt + Flicker8k_Dataset/."""
    lines, names = [], []
    for i in range(n_train + n_test):
        name = f"{2000 + i}_abc.jpg"
        write_image(root / "Flicker8k_Dataset" / name, i)
        names.append(name)
        lines += [f"{name}#{c}\tPicture {i}, caption {c}." for c in range(5)]
    (root / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
    (root / "Flickr_8k.trainImages.txt").write_text("\n".join(names[:n_train]) + "\n")
    (root / "Flickr_8k.testImages.txt").write_text("\n".join(names[n_train:]) + "\n")
    return root


def fashion_idx(root: Path, n_train=30, n_test=20) -> Path:
    """The four Fashion-MNIST idx .gz files, with pixel values that encode the index (and a last row
    that marks the file, so that no test image equals a train one)."""
    import gzip

    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        images = np.stack([np.full((28, 28), i % 256, np.uint8) for i in range(n)])
        images[:, -1, :] = 255 if split == "t10k" else 0
        labels = (np.arange(n) % 10).astype(np.uint8)
        with gzip.open(root / f"{split}-images-idx3-ubyte.gz", "wb") as f:
            f.write(np.array([0, 0, 8, 3], np.uint8).tobytes() + np.array([n, 28, 28], ">i4").tobytes() + images.tobytes())
        with gzip.open(root / f"{split}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(np.array([0, 0, 8, 1], np.uint8).tobytes() + np.array([n], ">i4").tobytes() + labels.tobytes())
    return root


def coco_like_captions(n, seed=0):
    """Captions of COCO's length (about 10 words, 12-16 tokens)."""
    rng = np.random.default_rng(seed)
    subjects = ["a man", "a woman", "two dogs", "a cat", "a red bus", "a group of people", "a young boy", "a bird"]
    verbs = ["is sitting on", "is standing next to", "walks along", "is riding", "looks at", "plays with"]
    objects = ["a wooden bench", "the busy street", "a large table", "a green field", "the sandy beach", "a kite"]
    tails = ["", " in the park", " on a sunny day", " near the water", " with a friend"]
    return [f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}{rng.choice(tails)}." for _ in range(n)]
