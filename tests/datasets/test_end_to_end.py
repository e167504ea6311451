"""Real images, real text, real encoders, through the CLI, offline."""

import pytest
from click.testing import CliRunner

from extras import needs_extra  # tests/support

needs_extra("torch", "encoders")

from alignbench.cli import cli  # noqa: E402
from alignbench_plugins.datasets.fashion_mnist import FashionMNIST  # noqa: E402
from caption_fixtures import karpathy_coco  # noqa: E402


def run(tmp_path, *args):
    return CliRunner().invoke(cli, ["run", *args, "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path),
                                    "--cache-dir", str(tmp_path / "cache")])


def test_fmap_on_coco_files_in_the_official_layout(tmp_path):
    root = karpathy_coco(tmp_path / "coco")
    result = run(tmp_path, "--aligner", "fmap", "--dataset", "coco", "--param", f"coco.data_dir=\"{root}\"",
                 "--anchors", "0,4", "--seeds", "0")
    assert result.exit_code == 0, result.output
    board = (tmp_path / "coco.md").read_text()
    assert "`efficientnet-lite0`" in board and "`minilm`" in board  # the dataset's default encoders
    assert "| fmap " in board


@pytest.mark.skipif(not FashionMNIST().available(), reason="the dataset-fashion-mnist Debian package is not installed")
def test_fashion_mnist_end_to_end_with_real_encoders(tmp_path):
    args = ["--dataset", "fashion-mnist", "--param", "fashion-mnist.n_train=200", "--param", "fashion-mnist.n_test=200",
            "--aligner", "procrustes", "--aligner", "fmap", "--anchors", "0,100", "--seeds", "0"]
    result = run(tmp_path, *args)
    assert result.exit_code == 0, result.output
    from alignbench.store import ResultStore

    with ResultStore(tmp_path / "s.sqlite") as store:
        scores = {(r.aligner, r.anchors): r.metrics for r in store.records(status="ok")}
    # Class-level retrieval over 10 classes: chance is 10%.
    assert scores[("procrustes", 100)]["class_mean_R@1"] > 0.4
    assert scores[("fmap", 100)]["class_mean_R@1"] > 0.4
    assert ("fmap", 0) in scores  # the unsupervised cell runs (at 200 items it is near chance)
    again = run(tmp_path, *args, "--param", "procrustes.dim=64")  # new cells, cached embeddings
    assert again.exit_code == 0 and "encoding" not in again.output


def test_another_copy_of_a_dataset_under_the_same_names_is_not_served_the_first_copys_embeddings(
        tmp_path, registry):
    """Two Fashion-MNIST folders, the second with other pixels under the same file and item names,
    through one embedding cache: the second is encoded afresh (its embeddings were the first's), and
    each folder's embeddings are what a fresh encode gives."""
    import numpy as np

    from alignbench.cache import EmbeddingCache
    from alignbench.data import DataStage
    from caption_fixtures import fashion_idx  # tests/support

    first, second = fashion_idx(tmp_path / "a"), fashion_idx(tmp_path / "b")
    import gzip

    with gzip.open(second / "train-images-idx3-ubyte.gz", "rb") as f:
        data = bytearray(f.read())
    data[16:] = bytes(255 - b for b in data[16:])  # the same header and names, inverted pixels
    with gzip.open(second / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(bytes(data))

    def embedded(root, cache):
        config = {"dataset": {"name": "fashion-mnist", "params": {"data_dir": str(root), "n_train": 8, "n_test": 4}},
                  "encoders": {"image": {"name": "efficientnet-lite0", "params": {}, "source": "builtin"},
                               "text": {"name": "minilm", "params": {}, "source": "builtin"}}}
        return DataStage(registry, cache).splits_for(config).train.x

    cache = EmbeddingCache(tmp_path / "cache")
    a, b = embedded(first, cache), embedded(second, cache)
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(b, embedded(second, None))
    np.testing.assert_array_equal(a, embedded(first, cache))
