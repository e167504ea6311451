"""hf-dataset on fixtures written by the datasets library itself from REAL photos: save_to_disk (a
DatasetDict, or one Dataset with a split column) and the hub's parquet layout. Needs the hf extra."""

import numpy as np
import pytest

from extras import needs_extra  # tests/support

needs_extra("skimage.data", "test")
datasets = needs_extra("datasets", "hf")

from alignbench.errors import DatasetNotFoundError  # noqa: E402
from alignbench.testing import check_dataset  # noqa: E402
from alignbench_plugins.datasets.hf_dataset import ArrowImage, HFDataset  # noqa: E402
from format_fixtures import check_coco_rules, hf_dataset, photos  # noqa: E402  (tests/support)

PHOTOS = photos()


@pytest.mark.parametrize("form", ["dict", "single", "parquet", "one-hub-split", "dict-blank-column"])
def test_every_on_disk_form_gives_cocos_splits_and_the_real_images(tmp_path, form):
    dataset = HFDataset(path=str(hf_dataset(tmp_path / "ds", form)))
    splits = dataset.load()
    if form in ("single", "one-hub-split"):  # the split column: val rows are left out, as in every other form
        check_coco_rules(splits)
    else:  # the fixture's DatasetDict / parquet files hold train and test only
        assert splits.train.n_items == 4 and splits.test.n_items == 4 and splits.train.n_texts == 8
    assert all(isinstance(item, ArrowImage) for item in splits.test.x)  # read when encoded
    contents = {content for _, content, _ in PHOTOS}
    assert all(item.read_bytes() in contents for item in splits.train.x + splits.test.x)
    assert check_dataset(dataset) == 7


def test_columns_are_named_by_parameters_and_a_missing_one_is_one_line(tmp_path):
    root = hf_dataset(tmp_path / "ds", "dict")
    with pytest.raises(DatasetNotFoundError, match="no image column 'picture' \\(columns: image, caption, split\\); "
                                                   "name it with --param hf-dataset.image_column") as error:
        HFDataset(path=str(root), image_column="picture").validate()
    assert "\n" not in str(error.value) and "Expected a Hugging Face dataset on disk" in str(error.value)
    with pytest.raises(DatasetNotFoundError, match="no caption column \\(alt\\) among image, caption, split"):
        HFDataset(path=str(root), caption_columns=["alt"]).validate()
    splits = HFDataset(path=str(root), caption_columns=["caption"]).load()
    assert splits.train.n_texts == 8


def test_a_folder_in_no_known_form_names_the_expected_layout(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "data.json").write_text("{}")
    with pytest.raises(DatasetNotFoundError, match="neither a save_to_disk folder nor holds parquet files"):
        HFDataset(path=str(tmp_path / "x")).validate()


def test_the_same_data_in_two_forms_gets_the_same_item_ids(tmp_path):
    a = HFDataset(path=str(hf_dataset(tmp_path / "a", "dict"))).load()
    b = HFDataset(path=str(hf_dataset(tmp_path / "b", "parquet"))).load()
    assert a.test.item_ids == b.test.item_ids and a.train.y == b.train.y
    np.testing.assert_array_equal(a.test.text_item, b.test.text_item)


def test_an_unreadable_image_in_an_arrow_table_is_one_line_naming_its_row_and_folder(tmp_path):
    import pyarrow

    from alignbench.errors import InvalidInputError
    from alignbench_plugins.encoders.images import to_rgb

    column = pyarrow.chunked_array([[{"bytes": b"no image here", "path": None}]])
    item = ArrowImage(column, 0, tmp_path)
    with pytest.raises(InvalidInputError) as error:
        to_rgb(item)
    assert str(error.value).startswith(f"row 0 of the image column in {tmp_path} is not a readable image")
    assert "\n" not in str(error.value)
