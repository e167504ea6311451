from pathlib import Path

import numpy as np
import pandas as pd
from click.testing import CliRunner

from alignbench import Anchors, PairedData
from alignbench.cli import cli
from alignbench.protocols import average_captions, gallery_with_anchors

SMALL = ["--param", "synthetic-correlated.n_items=400", "--param", "synthetic-correlated.dim_x=32",
         "--param", "synthetic-correlated.dim_y=24"]


def test_diagnose_prints_both_tables_and_writes_figures(tmp_path):
    result = CliRunner().invoke(cli, ["diagnose", "--dataset", "synthetic-correlated", *SMALL, "--anchors", "0,10,100",
                                      "--protocol", "both", "--store", str(tmp_path / "s.sqlite"),
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "standard protocol" in result.output and "paper protocol" in result.output
    assert "| fmap, 100 anchors" in result.output and "| ground truth (held-out pairs)" in result.output
    assert "| fmap-spectral, 100 anchors" in result.output  # the seed paper's own map, beside fmap's
    for stem in ("functional-maps", "spectra", "recall-vs-anchors"):
        for suffix in ("png", "svg"):
            assert (tmp_path / f"synthetic-correlated-{stem}.{suffix}").stat().st_size > 1000
    # The printed tables are the written ones: the README quotes them from this file.
    written = (tmp_path / "synthetic-correlated-diagnosis.md").read_text()
    assert written.strip() in result.output and "paper protocol" in written and "rank of C" in written
    csv = pd.read_csv(tmp_path / "synthetic-correlated-diagnosis.csv", index_col="map")
    assert {"fmap, 10 anchors", "fmap-spectral, 100 anchors", "ground truth (held-out pairs)"} <= set(csv.index)
    assert (csv["rank of C"] >= 1).all()
    svg = (tmp_path / "synthetic-correlated-spectra.svg").read_bytes()
    (tmp_path / "synthetic-correlated-spectra.svg").unlink()
    again = CliRunner().invoke(cli, ["diagnose", "--dataset", "synthetic-correlated", *SMALL, "--anchors", "0,10,100",
                                     "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path)])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "synthetic-correlated-spectra.svg").read_bytes() == svg, "figures must be deterministic"


def test_only_the_canonical_diagnosis_writes_into_leaderboards(tmp_path, monkeypatch):
    """A user's own diagnosis (one seed, or one protocol) must not overwrite the committed tables."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["diagnose", "--dataset", "synthetic-correlated", *SMALL[:2], "--anchors",
                                      "0,10,100", "--store", str(tmp_path / "own" / "s.sqlite")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "own" / "leaderboards" / "synthetic-correlated-diagnosis.md").exists()
    assert not (tmp_path / "leaderboards").exists()
    from alignbench.cli import tables_dir

    assert tables_dir(None, None, canonical=True) == Path("leaderboards")


def test_the_recall_figure_plots_class_level_recall_beside_instance_level_where_items_have_labels(tmp_path,
                                                                                                   monkeypatch):
    from alignbench import diagnose as diagnosis

    plotted = []
    draw = diagnosis.figures.recall_vs_anchors
    monkeypatch.setattr(diagnosis.figures, "recall_vs_anchors",
                        lambda frame, metrics, title: plotted.append(metrics) or draw(frame, metrics, title))
    result = CliRunner().invoke(cli, ["diagnose", "--dataset", "synthetic-correlated", *SMALL, "--anchors", "0,10",
                                      "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert plotted == [["mean_R@1", "class_mean_R@1"]]
    unlabelled = pd.DataFrame({"mean_R@1": [0.5], "class_mean_R@1": [np.nan]})
    assert diagnosis.recall_metrics(unlabelled) == diagnosis.recall_metrics(unlabelled[["mean_R@1"]]) == ["mean_R@1"]


def test_paper_protocol_averages_captions_and_keeps_anchors_in_the_gallery():
    x = np.arange(6, dtype=np.float32).reshape(3, 2)
    y = np.array([[0, 0], [2, 2], [4, 4], [6, 6], [8, 8], [10, 10]], dtype=np.float32)
    split = PairedData(x=x, y=y, text_item=np.array([0, 0, 1, 1, 2, 2]))
    averaged = average_captions(split)
    np.testing.assert_array_equal(averaged.y, [[1, 1], [5, 5], [9, 9]])
    assert averaged.text_item.tolist() == [0, 1, 2]
    anchors = Anchors(items=np.array([7]), texts=np.array([7]), x=np.ones((1, 2), np.float32),
                      y=np.ones((1, 2), np.float32))
    train = PairedData(x=np.zeros((8, 2), np.float32), y=np.zeros((8, 2), np.float32), text_item=np.arange(8),
                       item_ids=tuple(f"t{i}" for i in range(8)), labels=np.arange(8) % 3)
    gallery = gallery_with_anchors(averaged, anchors, train)
    assert gallery.n_items == 4 and gallery.text_item.tolist() == [0, 1, 2, 3]
    assert gallery.labels is None and gallery.item_ids is None  # the test split has neither
    labelled = PairedData(x=x, y=y, text_item=split.text_item, item_ids=("a", "b", "c"), labels=np.array([2, 0, 2]))
    gallery = gallery_with_anchors(average_captions(labelled), anchors, train)
    assert gallery.labels.tolist() == [2, 0, 2, 1] and gallery.item_ids == ("a", "b", "c", "t7")


def test_the_paper_protocol_keeps_class_level_retrieval(registry, store):
    # Its gallery lost the labels, and class-retrieval gave nothing without a word.
    from alignbench.runner import Runner, Sweep

    sweep = Sweep(aligners=[("procrustes", {})], datasets=[("synthetic-correlated", {"n_items": 400})],
                  levels=[50], seeds=[0], metrics=[("class-retrieval", {})], protocol="paper")
    Runner(registry, store).run(sweep)
    [record] = store.records(status="ok")
    assert 0 < record.metrics["class_mean_R@1"] <= 1
    # 400 items halved, captions averaged to one per item; the table says that anchors join the gallery.
    assert record.config["split_sizes"] == {"test": [200, 200], "train": [200, 200]}
    from alignbench.leaderboard import boards, render_markdown

    line = next(x for x in render_markdown(boards(store.records())).splitlines() if x.startswith("- splits:"))
    assert line.endswith("; paper protocol: each level's anchor pairs join the test gallery, and chance falls with them")


def test_paper_image_recall_reads_the_top_ceil_k_over_5(registry, store):
    from alignbench.runner import Runner, Sweep

    sweep = Sweep(aligners=[("procrustes", {})], datasets=[("synthetic-correlated", {"n_items": 400})],
                  levels=[50], seeds=[0], metrics=[("retrieval", {"paper_i2t": True})], protocol="paper")
    Runner(registry, store).run(sweep)
    [record] = store.records(status="ok")
    assert record.metrics["i2t_R@1"] == record.metrics["i2t_R@5"]  # the paper's R@1 = R@5 artefact
    assert record.config["protocol"] == "paper"


def test_diagnose_encodes_raw_data_once_through_the_embedding_cache(registry, tmp_path):
    from alignbench.cache import EmbeddingCache
    from alignbench.diagnose import diagnose
    from alignbench.store import ResultStore
    from counting_plugin import ToyImageEncoder

    cache = EmbeddingCache(tmp_path / "cache")
    encoders = {"image": ("toy-image", {}), "text": ("toy-text", {})}
    with ResultStore(tmp_path / "s.sqlite") as store:
        diagnose(registry, store, ("raw-toy", {"n_items": 60}), levels=[5], protocols=("standard", "paper"),
                 encoders=encoders, cache=cache)
    calls = ToyImageEncoder.calls
    assert len(cache.entries()) == 4  # train and test, each side
    with ResultStore(tmp_path / "other.sqlite") as store:
        report = diagnose(registry, store, ("raw-toy", {"n_items": 60}), levels=[5], encoders=encoders, cache=cache)
    assert ToyImageEncoder.calls == calls, "a second diagnosis encoded the images again"
    assert "fmap, 5 anchors" in report.diagnostics.index
