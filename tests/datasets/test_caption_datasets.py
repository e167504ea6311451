import logging

import numpy as np
import pytest

from extras import needs_extra  # tests/support

from alignbench.errors import DatasetNotFoundError
from alignbench_plugins.datasets.fashion_mnist import CLASSES, TEMPLATES, FashionMNIST, captions_for
from alignbench_plugins.datasets.karpathy import COCO, Flickr8k, Flickr30k
from alignbench_plugins.datasets.skimage_photos import SkimagePhotos
from caption_fixtures import (fashion_idx, flickr8k_original, karpathy_coco, karpathy_flickr, official_coco)


def test_coco_karpathy_split(tmp_path):
    splits = COCO(data_dir=str(karpathy_coco(tmp_path))).load()
    assert splits.train.n_items == 10 and splits.test.n_items == 6  # train + restval; test
    assert splits.train.item_ids[0] == "train2014/COCO_train2014_000000000000.jpg"
    assert np.bincount(splits.train.text_item)[0] == 7  # all captions are kept, 7 here
    assert splits.train.n_texts == 7 + 9 * 5
    assert splits.test.y[0] == "Picture 12, caption 0."
    assert all(path.endswith(".jpg") for path in splits.test.x)


def test_coco_official_2017_files(tmp_path):
    splits = COCO(data_dir=str(official_coco(tmp_path))).load()
    assert (splits.train.n_items, splits.test.n_items) == (6, 4)
    assert splits.test.item_ids[0] == "val2017/000000000006.jpg" and splits.test.n_texts == 20


def test_coco_auto_annotations_are_keyed_by_the_form_found(tmp_path, monkeypatch):
    """The Karpathy 5k test and val2017 are other held-out sets: their cells must not share a key."""
    karpathy, official = str(karpathy_coco(tmp_path / "k")), str(official_coco(tmp_path / "o"))
    assert COCO(data_dir=karpathy).get_params()["annotations"] == "karpathy"
    assert COCO(data_dir=official).get_params()["annotations"] == "official"
    monkeypatch.setenv("ALIGNBENCH_COCO_DIR", official)  # found through the environment, as the README shows
    assert COCO().get_params()["annotations"] == "official"
    assert COCO(data_dir=karpathy, annotations="official").get_params()["annotations"] == "official"
    monkeypatch.delenv("ALIGNBENCH_COCO_DIR")
    assert COCO().get_params()["annotations"] == "auto"  # no data: nothing to resolve (load says what is missing)
    # The site's reproduce command leaves out only the constructor's defaults, not what "auto" found
    # on the publishing machine: run elsewhere, it must resolve "auto" there, or name the form.
    from alignbench.plugins import load_registry
    from alignbench.publish.build import default_params

    monkeypatch.setenv("ALIGNBENCH_COCO_DIR", karpathy)
    assert default_params(load_registry())("dataset", "coco")["annotations"] == "auto"
    monkeypatch.delenv("ALIGNBENCH_COCO_DIR")
    # Rebuilt from its parameters, a dataset loads the same split.
    again = COCO(**COCO(data_dir=karpathy).get_params()).load()
    assert again.test.item_ids == COCO(data_dir=karpathy).load().test.item_ids


def test_coco_caps_the_anchor_pool_with_a_seeded_subset(tmp_path):
    root = str(karpathy_coco(tmp_path))
    first = COCO(data_dir=root, max_train_items=4).load().train.item_ids
    assert len(first) == 4 and first == COCO(data_dir=root, max_train_items=4).load().train.item_ids
    assert first != COCO(data_dir=root, max_train_items=4, seed=1).load().train.item_ids


def test_missing_held_out_images_are_an_error_unless_allowed(tmp_path, caplog):
    """Fewer test images would make a row that stands for the benchmark's test split without being it."""
    root = karpathy_coco(tmp_path, missing={13, 14})
    with pytest.raises(DatasetNotFoundError) as refused:
        COCO(data_dir=str(root)).load()
    message = str(refused.value)
    assert "\n" not in message and "2 of the 6 held-out images listed in" in message
    assert "--param coco.allow_missing=true to score on the 4 found" in message
    with caplog.at_level(logging.WARNING):
        splits = COCO(data_dir=str(root), allow_missing=True).load()
    assert splits.test.n_items == 4
    assert "2 of 6 images listed in" in caplog.text and "dataset_coco.json" in caplog.text
    assert COCO(data_dir=str(root), allow_missing=True).get_params()["allow_missing"] is True  # in the cells' keys


def test_missing_train_images_are_counted_and_skipped(tmp_path, caplog):
    root = karpathy_coco(tmp_path, missing={1, 2})
    with caplog.at_level(logging.WARNING):
        splits = COCO(data_dir=str(root)).load()
    assert splits.train.n_items == 8 and splits.test.n_items == 6  # 10 train + restval, 2 missing
    assert "2 of 10 images listed in" in caplog.text


def test_missing_data_names_the_expected_layout(tmp_path, monkeypatch):
    monkeypatch.delenv("ALIGNBENCH_COCO_DIR", raising=False)
    with pytest.raises(DatasetNotFoundError, match=r"(?s)no data directory.*dataset_coco.json.*captions_train2017"):
        COCO().load()
    with pytest.raises(DatasetNotFoundError, match=r"(?s)captions_train2017.json is missing.*Karpathy split"):
        COCO(data_dir=str(tmp_path)).load()
    (tmp_path / "dataset_coco.json").write_text("{}")
    with pytest.raises(DatasetNotFoundError, match="not a Karpathy split file"):
        COCO(data_dir=str(tmp_path)).load()


@pytest.mark.parametrize("content, message", [
    ('{"images": 5}', "its 'images' is a int, not a list"),
    ('{"images": [5]}', "image 0 is not a Karpathy image entry"),
    ('{"images": [{"filename": "a.jpg", "split": "test", "sentences": "a cat"}]}', "image 0 is not a Karpathy"),
    ('{"images": {"a": 1}}', "its 'images' is a dict"),
    ('{"images": [{"filename": 5, "split": "test", "sentences": []}]}', "image 0 is not a Karpathy"),
    ('{"images": [{"filename": "a.jpg", "split": "test", "sentences": [{"raw": 5}]}]}', "no string 'raw'"),
    ('{"images": [{"filename": "a.jpg", "split": "test", "sentences": [{"tokens": "a cat"}]}]}', "list of string"),
])
def test_a_split_file_of_the_wrong_shape_is_one_line(tmp_path, content, message):
    (tmp_path / "dataset_coco.json").write_text(content)
    with pytest.raises(DatasetNotFoundError, match=message) as error:
        COCO(data_dir=str(tmp_path)).load()
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("content", [
    '{"images": [5], "annotations": []}',
    '{"images": [{"id": 1, "file_name": 7}], "annotations": []}',
    '{"images": [{"id": 1, "file_name": "a.jpg"}, {"id": "2", "file_name": "b.jpg"}], "annotations": []}',
    '{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"image_id": 1, "caption": 3}]}',
])
def test_official_annotations_of_the_wrong_shape_are_one_line(tmp_path, content):
    root = official_coco(tmp_path)
    (root / "annotations" / "captions_val2017.json").write_text(content)
    with pytest.raises(DatasetNotFoundError, match="is not a COCO captions file .*'images' .*'annotations'"):
        COCO(data_dir=str(root), annotations="official").load()


def test_flickr30k_karpathy_split(tmp_path):
    splits = Flickr30k(data_dir=str(karpathy_flickr(tmp_path, "flickr30k", "flickr30k-images"))).load()
    assert (splits.train.n_items, splits.test.n_items) == (6, 4)
    assert splits.test.n_texts == 20


def test_flickr8k_karpathy_and_original_token_file(tmp_path):
    karpathy = Flickr8k(data_dir=str(karpathy_flickr(tmp_path / "k", "flickr8k", "Flicker8k_Dataset"))).load()
    assert karpathy.test.n_items == 4
    original = Flickr8k(data_dir=str(flickr8k_original(tmp_path / "o"))).load()
    assert (original.train.n_items, original.test.n_items) == (5, 3)
    assert original.train.y[:2] == ["Picture 0, caption 0.", "Picture 0, caption 1."]


def test_fashion_mnist_reader_on_generated_idx_files(tmp_path):
    splits = FashionMNIST(data_dir=str(fashion_idx(tmp_path)), n_train=12, n_test=None).load()
    assert (splits.train.n_items, splits.test.n_items) == (12, 20)
    assert splits.test.n_texts == 5 * 20 and len(TEMPLATES) == 5
    index = int(splits.test.item_ids[7].split("-")[1])
    assert splits.test.x[7].shape == (28, 28) and splits.test.x[7][0, 0] == index % 256
    assert splits.test.labels[7] == index % 10
    assert "ankle boot" in splits.test.y[5 * 9] or splits.test.labels[9] != 9


def test_fashion_mnist_test_subset_does_not_depend_on_n_train(tmp_path):
    """Rows with other train sizes are scored on the same held-out images (the train draw, made first
    from the same generator, used to be skipped when every train image was kept)."""
    root = str(fashion_idx(tmp_path))
    tests = {n_train: FashionMNIST(data_dir=root, n_train=n_train, n_test=8).load().test.item_ids
             for n_train in (12, 25, 30, 1000, None)}
    assert len(set(tests.values())) == 1, tests
    assert FashionMNIST(data_dir=root, n_train=12, n_test=8, seed=1).load().test.item_ids != tests[12]


def test_fashion_mnist_missing_files_say_how_to_get_them(tmp_path):
    dataset = FashionMNIST(data_dir=str(tmp_path))
    assert not dataset.available()
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        dataset.load()


@pytest.mark.skipif(not FashionMNIST().available(), reason="the dataset-fashion-mnist Debian package is not installed")
def test_fashion_mnist_real_data():
    splits = FashionMNIST().load()
    assert (splits.train.n_items, splits.test.n_items) == (1000, 1000)
    assert set(np.unique(splits.train.labels)) == set(range(10))
    assert splits.train.x[0].shape == (28, 28) and splits.train.x[0].dtype == np.uint8


def test_skimage_photos_are_captioned_by_their_docstrings():
    needs_extra("skimage", "test")
    splits = SkimagePhotos().load()
    captions = dict(zip(splits.train.item_ids + splits.test.item_ids, splits.train.y + splits.test.y))
    assert len(captions) == 23
    assert captions["chelsea"] == "Chelsea the cat." and captions["coffee"] == "Coffee cup."


@pytest.mark.parametrize("name", ["../../outside.jpg", "/etc/passwd", "sub/../../../outside.jpg"])
def test_split_file_entries_must_stay_inside_the_data_folder(tmp_path, name):
    import json

    root = karpathy_coco(tmp_path / "coco")
    split = json.loads((root / "dataset_coco.json").read_text())
    split["images"][0]["filename"] = name
    (root / "dataset_coco.json").write_text(json.dumps(split))
    with pytest.raises(DatasetNotFoundError, match="outside") as error:
        COCO(data_dir=str(root)).load()
    assert "\n" not in str(error.value)


def test_an_image_folder_that_is_a_link_to_another_disk_is_inside(tmp_path):
    """COCO's val2014 kept elsewhere and linked into the data folder: the names stay inside it."""
    root = karpathy_coco(tmp_path / "coco")
    (root / "val2014").rename(tmp_path / "elsewhere")
    (root / "val2014").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    splits = COCO(data_dir=str(root)).load()
    assert splits.test.n_items == 6


def test_flickr8k_listing_entries_must_stay_inside_the_image_folder(tmp_path):
    root = flickr8k_original(tmp_path)
    (root / "Flickr_8k.testImages.txt").write_text("../Flickr8k.token.txt\n")
    with pytest.raises(DatasetNotFoundError, match="outside"):
        Flickr8k(data_dir=str(root)).load()


def test_fashion_mnist_captions_take_the_article_of_their_class():
    """Every caption is a grammatical English phrase naming its class: "an ankle boot", "a t-shirt"."""
    assert captions_for(9)[:4] == ["a photo of an ankle boot", "a black and white picture of an ankle boot",
                                   "a small grayscale image of an ankle boot",
                                   "a low resolution product photo showing an ankle boot"]
    assert captions_for(9)[4] == "a centred picture of a single ankle boot on a dark background"
    assert captions_for(0)[0] == "a photo of a t-shirt"
    every = [c for label in range(len(CLASSES)) for c in captions_for(label)]
    assert len(set(every)) == 50 and not any(" a a" in c or " a e" in c or " a i" in c or " a o" in c for c in every)


def test_a_split_file_without_images_of_a_split_says_which(tmp_path):
    """It said 'none of the 0 images listed were found'."""
    root = karpathy_coco(tmp_path, n_train=0, n_restval=0)
    with pytest.raises(DatasetNotFoundError, match="lists no image of the train split; a split file must list both"):
        COCO(data_dir=str(root)).load()


def test_fashion_mnist_cells_follow_its_data_wherever_it_is_read_from(tmp_path, monkeypatch):
    """The cell key held data_dir only: a folder named by $ALIGNBENCH_FASHION_MNIST_DIR, or files
    rewritten in place, reused the old data's cells. The data's digest (decompressed, so another gzip
    of the same data is the same data) is now a parameter, filled in when left out."""
    import gzip

    from alignbench.errors import InvalidInputError

    first, second = fashion_idx(tmp_path / "a"), fashion_idx(tmp_path / "b")
    path = second / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as f:
        data = bytearray(f.read())
    data[16:] = bytes(255 - b for b in data[16:])
    with gzip.open(path, "wb") as f:
        f.write(bytes(data))
    monkeypatch.setenv("ALIGNBENCH_FASHION_MNIST_DIR", str(first))
    digest = FashionMNIST().get_params()["sha256"]
    monkeypatch.setenv("ALIGNBENCH_FASHION_MNIST_DIR", str(second))
    assert FashionMNIST().get_params()["sha256"] not in (None, digest)
    recompressed = fashion_idx(tmp_path / "c")
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        with gzip.open(recompressed / name, "rb") as f:
            raw = f.read()
        with gzip.open(recompressed / name, "wb", compresslevel=1) as f:
            f.write(raw)
    assert FashionMNIST(data_dir=str(recompressed)).get_params()["sha256"] == digest
    with pytest.raises(InvalidInputError, match="holds other data than sha256"):
        FashionMNIST(sha256=digest, n_train=5, n_test=5).load()  # $ALIGNBENCH_FASHION_MNIST_DIR: the second
    assert FashionMNIST(data_dir=str(tmp_path / "missing")).get_params()["sha256"] is None


def test_coco_and_flickr_cells_follow_their_folders_content_not_their_path(tmp_path, monkeypatch):
    """The key held data_dir only: a folder named by $ALIGNBENCH_COCO_DIR, or files replaced in place
    (a resized copy, an edited split), reused the old data's cells."""
    import shutil

    from alignbench.errors import InvalidInputError

    root = karpathy_coco(tmp_path / "coco")
    digest = COCO(data_dir=str(root)).get_params()["sha256"]
    assert digest is not None
    shutil.copytree(root, tmp_path / "moved")
    monkeypatch.setenv("ALIGNBENCH_COCO_DIR", str(tmp_path / "moved"))
    assert COCO().get_params()["sha256"] == digest  # moved: the same data
    image = next((root / "val2014").iterdir())
    image.write_bytes(image.read_bytes() + b"\0")  # re-encoded in place: another size
    resized = COCO(data_dir=str(root)).get_params()["sha256"]
    split = tmp_path / "moved" / "dataset_coco.json"
    split.write_text(split.read_text().replace('"test"', '"val"', 1))  # the split edited
    assert len({digest, resized, COCO().get_params()["sha256"]}) == 3
    with pytest.raises(InvalidInputError, match="holds other files than sha256"):
        COCO(data_dir=str(root), sha256=digest).load()
    flickr = karpathy_flickr(tmp_path / "flickr30k", "flickr30k", "flickr30k-images")
    assert Flickr30k(data_dir=str(flickr)).get_params()["sha256"] is not None
    assert COCO(data_dir=str(tmp_path / "none")).get_params()["sha256"] is None
