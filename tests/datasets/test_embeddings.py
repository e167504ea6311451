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


# ------------------------------------------------------------------ results follow the files' content


def _sweep(**dataset_params):
    from alignbench.runner import Sweep

    return Sweep(aligners=[("procrustes", {})], datasets=[("embeddings", dataset_params)], levels=[10], seeds=[0],
                 metrics=[("retrieval", {})])


def _pairs(seed):
    x = np.random.default_rng(seed).standard_normal((40, 6)).astype(np.float32)
    return x, x @ np.random.default_rng(seed + 100).standard_normal((6, 6)).astype(np.float32)


def _run(registry, store, sweep):
    from alignbench.runner import Runner

    return Runner(registry, store).run(sweep)


@pytest.mark.parametrize("form", ["one file", "separate files"])
def test_rewritten_files_get_new_cells_not_the_old_ones(registry, store, tmp_path, form):
    def write(seed):
        x, y = _pairs(seed)
        if form == "one file":
            np.savez(tmp_path / "p.npz", x=x, y=y)
        else:
            np.save(tmp_path / "x.npy", x)
            np.save(tmp_path / "y.npy", y + 0.5 * (seed > 0))  # only y changes

    sweep = _sweep(path=str(tmp_path / "p.npz")) if form == "one file" else _sweep(
        x=str(tmp_path / "x.npy"), y=str(tmp_path / "y.npy"))
    write(0)
    assert _run(registry, store, sweep).ran == 1
    assert _run(registry, store, sweep).skipped == 1  # unchanged: already done
    write(1)  # same paths, other content
    again = _run(registry, store, sweep)
    assert again.ran == 1 and again.skipped == 0, "the old cells were reported as done for the new content"
    first, second = store.records()
    assert first.key != second.key
    assert first.config["dataset"]["params"]["sha256"] != second.config["dataset"]["params"]["sha256"]


def test_touching_a_file_without_changing_it_keeps_its_cells(registry, store, tmp_path):
    import os

    np.savez(tmp_path / "p.npz", x=X, y=X)
    sweep = _sweep(path=str(tmp_path / "p.npz"))
    assert _run(registry, store, sweep).ran == 1
    os.utime(tmp_path / "p.npz", ns=(1, 1))  # a copy or a checkout moves the time, not the content
    assert _run(registry, store, sweep).skipped == 1


def test_each_file_is_read_once_per_size_and_modification_time(registry, store, tmp_path, monkeypatch):
    import alignbench.cache

    reads = []
    real = alignbench.cache._sha256_of
    monkeypatch.setattr(alignbench.cache, "_sha256_of", lambda f: reads.append(f.name) or real(f))
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "y.npy", X + 1)
    _run(registry, store, _sweep(x=str(tmp_path / "x.npy"), y=str(tmp_path / "y.npy")))
    assert sorted(reads) == sorted([str(tmp_path / "x.npy"), str(tmp_path / "y.npy")])


def test_sha256_pins_the_content(tmp_path):
    import hashlib

    np.savez(tmp_path / "p.npz", x=X, y=X)
    expected = hashlib.sha256((tmp_path / "p.npz").read_bytes()).hexdigest()  # what sha256sum prints
    assert Embeddings(path=str(tmp_path / "p.npz")).get_params()["sha256"] == expected
    Embeddings(path=str(tmp_path / "p.npz"), sha256=expected).load()
    with pytest.raises(InvalidInputError, match="embeddings.sha256"):
        Embeddings(path=str(tmp_path / "p.npz"), sha256="0" * 64).load()


def test_files_changed_between_planning_and_loading_are_refused(registry, tmp_path):
    from alignbench.runner import Runner

    np.savez(tmp_path / "p.npz", x=X, y=X)
    runner = Runner(registry, None)
    [cell] = runner.plan(_sweep(path=str(tmp_path / "p.npz")))
    np.savez(tmp_path / "p.npz", x=X + 1, y=X)
    with pytest.raises(InvalidInputError, match="changed since this run was planned"):
        runner.splits_for(cell.config)
