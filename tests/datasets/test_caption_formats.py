"""image-folder, hf-dataset and webdataset on fixtures written in each official format from REAL
photos (tests/support/format_fixtures.py): COCO's split rules, content-keyed ids, images read back
byte for byte, the conformance suite, and one-line layout errors."""

import io
import json
import tarfile

import numpy as np
import pytest

from extras import needs_extra  # tests/support

needs_extra("skimage.data", "test")
needs_extra("PIL", "encoders")

from alignbench.errors import DatasetNotFoundError  # noqa: E402
from alignbench.testing import check_dataset  # noqa: E402
from alignbench_plugins.datasets.caption_sources import TarMember  # noqa: E402
from alignbench_plugins.datasets.image_folder import ImageFolder  # noqa: E402
from alignbench_plugins.datasets.webdataset import WebDataset  # noqa: E402
from format_fixtures import check_coco_rules, image_folder, photos, webdataset_shards  # noqa: E402  (tests/support)

PHOTOS = photos()


# --------------------------------------------------------------------------------------- image-folder


@pytest.mark.parametrize("form, splits", [("jsonl", "column"), ("csv", "column"), ("jsonl", "folders"),
                                          ("csv", "folders")])
def test_image_folder_reads_the_hf_imagefolder_layouts(tmp_path, form, splits):
    dataset = ImageFolder(path=str(image_folder(tmp_path / "photos", form, splits)))
    check_coco_rules(dataset.load())
    assert check_dataset(dataset) == 7


def test_without_splits_the_test_items_are_chosen_by_content(tmp_path):
    root = image_folder(tmp_path / "photos", "jsonl", "none")
    first = ImageFolder(path=str(root), test_fraction=0.4).load()
    assert first.train.n_items + first.test.n_items == len(PHOTOS) and first.test.n_items > 0
    # A new photo moves no other photo between splits, and ids are keyed by content.
    from PIL import Image

    Image.fromarray(np.full((30, 30, 3), 7, np.uint8)).save(root / "images" / "new.png")
    with open(root / "metadata.jsonl", "a") as f:
        f.write(json.dumps({"file_name": "images/new.png", "captions": ["a flat grey square"]}) + "\n")
    second = ImageFolder(path=str(root), test_fraction=0.4).load()
    assert set(first.test.item_ids) <= set(second.test.item_ids)
    assert set(first.train.item_ids) <= set(second.train.item_ids)
    assert ImageFolder(path=str(root), test_fraction=0.4, seed=1).load().test.item_ids != second.test.item_ids


def test_the_same_file_name_with_other_pixels_is_another_item(tmp_path):
    one, two = image_folder(tmp_path / "one", "jsonl", "column"), image_folder(tmp_path / "two", "jsonl", "column")
    first_train = PHOTOS[0][0]
    from PIL import Image

    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(two / "images" / first_train)
    a, b = ImageFolder(path=str(one)).load().train.item_ids, ImageFolder(path=str(two)).load().train.item_ids
    assert a[0].split("@")[0] == b[0].split("@")[0] and a[0] != b[0] and a[1:] == b[1:]


def write_csv(root, header, rows):
    import csv

    root.mkdir(parents=True, exist_ok=True)
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return root


def test_one_row_per_caption_is_one_item_with_all_its_captions(tmp_path):
    """Flickr8k's `image,caption` CSV: five rows of one image are one item with five captions (they
    were five items of one caption each, the gallery holding every image five times)."""
    root = tmp_path / "photos"
    (root / "images").mkdir(parents=True)
    rows = []
    for i, (name, content, captions) in enumerate(PHOTOS):
        (root / "images" / name).write_bytes(content)
        rows += [[f"images/{name}", f"{caption} ({k})", "test" if i % 3 == 0 else "train"]
                 for k, caption in enumerate(captions * 3)]  # 6 rows an image
    splits = ImageFolder(path=str(write_csv(root, ["file_name", "caption", "split"], rows))).load()
    assert splits.train.n_items + splits.test.n_items == len(PHOTOS)
    assert np.all(np.bincount(splits.test.text_item) == 6) and np.all(np.bincount(splits.train.text_item) == 6)
    first = PHOTOS[0]
    assert splits.test.y[:6] == [f"{c} ({k})" for k, c in enumerate(first[2] * 3)]  # in row order


def test_one_image_in_two_splits_or_a_split_left_empty_is_refused_in_one_line(tmp_path):
    name, content, captions = PHOTOS[0]
    (tmp_path / "a" / "images").mkdir(parents=True)
    (tmp_path / "a" / "images" / name).write_bytes(content)
    write_csv(tmp_path / "a", ["file_name", "caption", "split"],
              [[f"images/{name}", "one", "train"], [f"images/{name}", "two", "test"]])
    with pytest.raises(DatasetNotFoundError, match=r"in the splits test, train; give each image one split"):
        ImageFolder(path=str(tmp_path / "a")).load()
    root = image_folder(tmp_path / "b", "csv", "column")
    text = (root / "metadata.csv").read_text().splitlines()
    text[1] = text[1].rsplit(",", 1)[0] + ","  # the first image's split cell left empty
    (root / "metadata.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DatasetNotFoundError, match=r"1 of \d+ images in .* have no split while the others have one"):
        ImageFolder(path=str(root)).load()


def test_only_caption_columns_are_read_as_captions_and_only_strings_as_captions(tmp_path):
    from alignbench.errors import InvalidInputError
    from alignbench_plugins.datasets.caption_sources import caption_list
    from alignbench_plugins.datasets.image_folder import is_caption_column

    assert [c for c in ["caption", "captions", "caption_1", "caption2", "caption_id", "caption_lang", "text",
                        "sentences", "file_name", "split"] if is_caption_column(c)] == [
        "caption", "captions", "caption_1", "caption2", "text", "sentences"]
    assert caption_list([{"raw": "A dog runs.", "tokens": ["a", "dog", "runs"], "sentid": 3}, " two "]) == [
        "A dog runs.", "two"]
    assert caption_list({"tokens": ["a", "dog", "runs"]}) == ["a dog runs"]  # as the Karpathy loader reads it
    # A string raw is the caption whatever the tokens hold (null in Arrow and JSON, a tuple, an array).
    for tokens in (None, ("a", "dog"), np.array(["a", "dog"]), [1]):
        assert caption_list({"raw": "A dog.", "tokens": tokens}) == ["A dog."]
    for value in (1000, b"bytes", {"tokens": [1]}, {"raw": 5}, {"sentid": 3}):
        with pytest.raises(InvalidInputError, match="captions are strings"):
            caption_list(value)
    name, content, captions = PHOTOS[0]
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / name).write_bytes(content)
    rows = [[f"images/{name}", captions[0], "1000", "en"]]
    for other, other_content, _ in PHOTOS[1:4]:
        (tmp_path / "images" / other).write_bytes(other_content)
        rows.append([f"images/{other}", "a caption", "1001", "en"])
    splits = ImageFolder(path=str(write_csv(tmp_path, ["file_name", "caption", "caption_id", "caption_lang"], rows)),
                         test_fraction=0.5).load()
    assert sorted(splits.train.y + splits.test.y) == sorted([captions[0]] + ["a caption"] * 3)


def test_the_same_picture_under_other_names_in_two_splits_is_held_out_only(caplog):
    """Scraped collections repeat pictures under other names: such a picture stays in the held-out
    split only (so that no test image is also an anchor), with the captions listed there."""
    from alignbench_plugins.datasets.caption_sources import Record, one_per_image

    records = [Record("a.jpg@00000000000000aa", "a.jpg", ("train caption",), "train"),
               Record("b.jpg@0000000000000bbb", "b.jpg", ("b",), "train"),
               Record("copy-of-a.jpg@00000000000000aa", "copy-of-a.jpg", ("test caption",), "test")]
    with caplog.at_level("WARNING"):
        merged = one_per_image(records, "image-folder", "DIR")
    assert [(r.item, r.captions, r.split) for r in merged] == [
        ("copy-of-a.jpg", ("test caption",), "test"), ("b.jpg", ("b",), "train")]
    assert "1 images in DIR appear under other names in more than one split" in caplog.text


def test_a_hub_parquet_split_alignbench_does_not_use_is_left_out_not_unsplit(tmp_path):
    from alignbench_plugins.datasets.hf_dataset import split_of

    root = tmp_path
    assert [split_of(root / "data" / name, root) for name in
            ("train-00000-of-00002.parquet", "test-00000-of-00001.parquet", "dev-00000-of-00001.parquet",
             "photos.parquet")] == ["train", "test", "dev", None]


def test_a_caption_cell_that_is_no_string_is_named_by_its_file_and_row(tmp_path):
    from alignbench.errors import InvalidInputError

    name, content, _ = PHOTOS[0]
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / name).write_bytes(content)
    (tmp_path / "metadata.jsonl").write_text(json.dumps({"file_name": f"images/{name}", "caption": 5}) + "\n")
    with pytest.raises(InvalidInputError, match=r"metadata.jsonl row 1: a caption cell holds int '5'"):
        ImageFolder(path=str(tmp_path)).load()


def test_caps_and_content_digest_like_coco(tmp_path):
    root = image_folder(tmp_path / "photos", "jsonl", "column")
    capped = ImageFolder(path=str(root), max_train_items=3, seed=5).load()
    assert capped.train.n_items == 3 and set(capped.train.item_ids) <= set(ImageFolder(path=str(root)).load().train.item_ids)
    before = ImageFolder(path=str(root)).get_params()["sha256"]
    (root / "metadata.jsonl").write_text((root / "metadata.jsonl").read_text().replace("Chelsea", "A cat"))
    assert ImageFolder(path=str(root)).get_params()["sha256"] != before


@pytest.mark.parametrize("make, message", [
    (lambda root: root, "no metadata.jsonl or metadata.csv in"),
    (lambda root: (root / "metadata.jsonl").write_text('{"image": "a.jpg", "caption": "x"}\n') and root,
     "has no file_name column \\(columns: image, caption\\)"),
    (lambda root: (root / "metadata.jsonl").write_text('{"file_name": "a.jpg", "label": 3}\n') and root,
     "has no caption column among file_name, label; name it with --param image-folder.caption_columns"),
    (lambda root: (root / "metadata.jsonl").write_text('{"file_name": "a.jpg", "caption": "x"\n') and root,
     "cannot read .*metadata.jsonl"),
    (lambda root: (root / "metadata.jsonl").write_text('{"file_name": "a.jpg", "caption": "x"}\n[1, 2]\n') and root,
     "line 2 is a JSON list, not an object"),
])
def test_a_wrong_layout_is_one_line_naming_the_expected_one(tmp_path, make, message):
    root = tmp_path / "folder"
    root.mkdir()
    with pytest.raises(DatasetNotFoundError, match=message) as error:
        ImageFolder(path=str(make(root))).validate()
    assert "\n" not in str(error.value) and "Expected the Hugging Face imagefolder layout" in str(error.value)


# --------------------------------------------------------------------------------------- webdataset


@pytest.mark.parametrize("captions", ["txt", "json", "img2dataset"])
def test_webdataset_reads_clip_benchmark_shards(tmp_path, captions):
    """img2dataset's samples hold the caption in a .json (stored first) and a .txt: read once."""
    dataset = WebDataset(path=str(webdataset_shards(tmp_path / "wds", captions)))
    splits = dataset.load()
    check_coco_rules(splits)
    assert all(isinstance(item, TarMember) for item in splits.train.x)  # referenced, not loaded
    assert check_dataset(dataset) == 7


def test_webdataset_images_are_the_shard_bytes_read_on_demand(tmp_path):
    splits = WebDataset(path=str(webdataset_shards(tmp_path / "wds"))).load()
    contents = {content for _, content, _ in PHOTOS}
    assert all(item.read_bytes() in contents for item in splits.train.x + splits.test.x)


def test_flat_shards_are_split_by_content(tmp_path):
    root = webdataset_shards(tmp_path / "wds", splits=False, per_shard=5)
    splits = WebDataset(path=str(root), test_fraction=0.4).load()
    assert splits.train.n_items + splits.test.n_items == len(PHOTOS) and splits.test.n_items > 0


def test_webdataset_layout_errors_are_one_line(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no .tar shards in .*Expected WebDataset shards") as error:
        WebDataset(path=str(tmp_path / "empty")).validate()
    assert "\n" not in str(error.value)
    (tmp_path / "gz").mkdir()
    (tmp_path / "gz" / "0.tar.gz").write_bytes(b"")
    with pytest.raises(DatasetNotFoundError, match="0.tar.gz is compressed: uncompress it"):
        WebDataset(path=str(tmp_path / "gz")).validate()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "0.tar").write_bytes(b"not a tar file at all" * 40)
    with pytest.raises(DatasetNotFoundError, match="cannot read .*0.tar"):
        WebDataset(path=str(tmp_path / "broken")).load()
    captionless = tmp_path / "captionless"
    captionless.mkdir()
    with tarfile.open(captionless / "0.tar", "w") as tar:
        info = tarfile.TarInfo("s0.jpg")
        info.size = len(PHOTOS[1][1])
        tar.addfile(info, io.BytesIO(PHOTOS[1][1]))
    with pytest.raises(DatasetNotFoundError, match="no captioned train images"):
        WebDataset(path=str(captionless)).load()


def test_an_image_folder_moved_elsewhere_keeps_its_cells_and_a_changed_image_does_not(tmp_path):
    import os
    import shutil

    folder = image_folder(tmp_path / "a", "jsonl", "column")
    digest = ImageFolder(path=str(folder)).get_params()["sha256"]
    moved = tmp_path / "b"
    shutil.copytree(folder, moved, copy_function=shutil.copy2)  # times kept, as mv or cp -p keep them
    assert ImageFolder(path=str(moved)).get_params()["sha256"] == digest
    image = sorted((moved / "images").iterdir())[0]
    os.utime(image, ns=(image.stat().st_atime_ns, image.stat().st_mtime_ns + 1))
    assert ImageFolder(path=str(moved)).get_params()["sha256"] != digest
