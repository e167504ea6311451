import numpy as np
import pytest
from safetensors.numpy import save_file

from alignbench.errors import DatasetNotFoundError, InvalidInputError
from alignbench_plugins.datasets.embeddings import Embeddings

rng = np.random.default_rng(0)
X = rng.standard_normal((40, 6)).astype(np.float32)
Y = np.repeat(X, 3, axis=0)
TEXT_ITEM = np.repeat(np.arange(40), 3)


@pytest.mark.parametrize("form", ["npz", "safetensors", "npy"])
def test_reads_every_format(tmp_path, form):
    if form == "npz":
        np.savez(tmp_path / "p.npz", x=X, y=Y, text_item=TEXT_ITEM)
        dataset = Embeddings(path=str(tmp_path / "p.npz"))
    elif form == "safetensors":
        save_file({"x": X, "y": Y, "text_item": TEXT_ITEM}, str(tmp_path / "p.safetensors"))
        dataset = Embeddings(path=str(tmp_path / "p.safetensors"))
    else:
        for name, array in (("x", X), ("y", Y), ("groups", TEXT_ITEM)):
            np.save(tmp_path / f"{name}.npy", array)
        dataset = Embeddings(x=str(tmp_path / "x.npy"), y=str(tmp_path / "y.npy"), text_item=str(tmp_path / "groups.npy"))
    splits = dataset.load()
    assert splits.train.n_items + splits.test.n_items == 40
    assert splits.train.n_texts == 3 * splits.train.n_items
    for part in (splits.train, splits.test):
        np.testing.assert_array_equal(part.y[::3], part.x)  # texts still belong to their items


def test_an_explicit_test_mask_is_respected(tmp_path):
    mask = np.zeros(40, dtype=np.int8)
    mask[:10] = 1
    np.savez(tmp_path / "p.npz", x=X, y=X, test=mask)
    splits = Embeddings(path=str(tmp_path / "p.npz")).load()
    np.testing.assert_array_equal(splits.test.x, X[:10])


def test_pickles_are_refused(tmp_path):
    np.savez(tmp_path / "p.npz", x=np.array([{"a": 1}], dtype=object), y=X)
    with pytest.raises(ValueError, match="pickle"):
        Embeddings(path=str(tmp_path / "p.npz")).load()


def test_bad_input_names_the_expected_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="text_item"):
        Embeddings(path=str(tmp_path / "missing.npz")).load()
    np.savez(tmp_path / "p.npz", x=X, y=Y)
    with pytest.raises(InvalidInputError, match="no text_item array"):
        Embeddings(path=str(tmp_path / "p.npz")).load()
