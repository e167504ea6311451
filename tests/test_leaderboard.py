import json

import pytest

from alignbench.leaderboard import boards, headline_table, write_leaderboards
from alignbench.runner import Runner, Sweep
from alignbench.store import ResultStore

EXACT = ("synthetic-correlated", {"n_items": 200, "dim_x": 16, "dim_y": 16, "latent_dim": 4, "specific_dim": 4,
                                  "correlation": 1.0, "noise": 0.0, "nonlinearity": False})


def run_into(path, registry, sweep):
    with ResultStore(path) as store:
        Runner(registry, store).run(sweep)
        return write_leaderboards(store, path.parent / "boards")


def test_tables_are_byte_identical_across_runs(registry, tmp_path):
    sweep = Sweep(aligners=[("procrustes", {}), ("relative", {})], datasets=[EXACT], levels=[0, 5, 20], seeds=[0, 1])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = run_into(tmp_path / "a" / "r.sqlite", registry, sweep)
    second = run_into(tmp_path / "b" / "r.sqlite", registry, sweep)
    assert [p.name for p in first] == ["synthetic-correlated.md", "synthetic-correlated.csv",
                                       "synthetic-correlated.json"]
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_headline_shows_mean_and_spread_and_marks_unusable_levels(registry, store, tmp_path):
    sweep = Sweep(aligners=[("lstsq", {}), ("broken", {})], datasets=[EXACT], levels=[0, 50], seeds=[0, 1, 2])
    Runner(registry, store).run(sweep)
    [board] = boards(store.records())
    table = headline_table(board)
    # All signal shared, no noise, linear: 50 anchors pin down the 4-D latent map exactly.
    assert table.loc["lstsq", "50"] == "100.0 ± 0.0"
    assert table.loc["lstsq", "0"] == "n/a"
    assert table.loc["broken", "50"] == "failed"
    assert list(table.index) == ["lstsq", "broken"]


def test_runs_with_different_settings_never_share_a_table(registry, store, tmp_path):
    other = (EXACT[0], {**EXACT[1], "noise": 0.5})
    Runner(registry, store).run(Sweep(aligners=[("procrustes", {})], datasets=[EXACT, other], levels=[5], seeds=[0]))
    assert len(boards(store.records())) == 2
    [md, _, js] = write_leaderboards(store, tmp_path)
    assert md.read_text().count("## Setting ") == 2
    assert len(json.loads(js.read_text())["settings"]) == 2


def test_one_aligner_with_two_configurations_gets_two_labelled_rows(registry, store):
    Runner(registry, store).run(Sweep(aligners=[("procrustes", {}), ("procrustes", {"dim": 2})], datasets=[EXACT],
                                      levels=[5], seeds=[0]))
    [board] = boards(store.records())
    labels = list(headline_table(board).index)
    assert len(labels) == 2 and any("dim=2" in label for label in labels) and any("dim=None" in l for l in labels)


def test_an_aligner_seeded_by_its_cells_gets_one_row_with_a_spread_over_seeds(registry, store):
    """The runner hands each cell's seed to aligners with a seed parameter; those seeds are the
    sweep's seeds, not configurations, so they must share one row (and its ± std)."""
    Runner(registry, store).run(Sweep(aligners=[("fmap", {"n_eigen": 10}), ("fmap", {"n_eigen": 10, "seed": 7})],
                                      datasets=[EXACT], levels=[5], seeds=[0, 1]))
    [board] = boards(store.records())
    table = headline_table(board)
    assert len(table) == 2 and any("seed=7" in label for label in table.index)
    seeded = [label for label in table.index if "seed=7" not in label][0]
    assert "cell's seed" in seeded


def test_a_mean_over_the_seeds_that_finished_says_how_many_of_them(registry, store):
    from dataclasses import replace

    Runner(registry, store).run(Sweep(aligners=[("lstsq", {})], datasets=[EXACT], levels=[50], seeds=[0, 1, 2]))
    first = next(r for r in store.records() if r.seed == 0)
    store.put(replace(first, status="failed", metrics={}, message="failed on purpose"))
    [board] = boards(store.records())
    assert headline_table(board).loc["lstsq", "50"] == "100.0 ± 0.0 (2 of 3 seeds)"


def test_one_aligner_from_two_versions_of_its_code_is_two_rows_never_one_average(registry, store):
    """A plugin upgraded between runs: its new cells run under new keys, and the old ones stay in the
    store. Averaging both into one row mixed two methods."""
    from dataclasses import replace

    Runner(registry, store).run(Sweep(aligners=[("lstsq", {})], datasets=[EXACT], levels=[50], seeds=[0]))
    [old] = store.records()
    aligner = {**old.config["aligner"], "version": "2"}
    store.put(replace(old, key=old.key[::-1], config={**old.config, "aligner": aligner}))
    [board] = boards(store.records())
    labels = sorted(headline_table(board).index)
    assert len(labels) == 2 and labels[0].endswith("version 2]") and labels[1].endswith("version none]")


def test_the_site_says_how_many_seeds_a_mean_spans_as_the_markdown_does():
    from alignbench.publish.summary import Summary, percent_text

    assert percent_text(Summary((0.5, 0.6), "ok", failed=1)) == "55.0 ± 7.1 (2 of 3 seeds)"
    assert percent_text(Summary((0.5, 0.6), "ok")) == "55.0 ± 7.1"
    assert percent_text(Summary((), "failed", failed=3)) == "failed"


def test_tables_say_how_large_the_splits_were_and_what_chance_scores_there(registry, store, tmp_path):
    import dataclasses

    import numpy as np

    from alignbench import AlignmentResult, PairedData
    from alignbench.testing import toy_result
    from alignbench_plugins.metrics.retrieval import Retrieval

    Runner(registry, store).run(Sweep(aligners=[("procrustes", {}), ("broken", {})], datasets=[EXACT], levels=[5],
                                      seeds=[0]))
    records = store.records()
    # 200 items, 5 texts each, halved: every cell, failed ones too, saw 100 test and 100 train items.
    assert {json.dumps(r.config["split_sizes"]) for r in records} == {'{"test": [100, 500], "train": [100, 500]}'}
    [md, _, _] = write_leaderboards(store, tmp_path)
    line = next(x for x in md.read_text().splitlines() if x.startswith("- splits: "))
    assert line == ("- splits: test 100 items and 500 texts (a random ranking's mean R@1: 1%); train 100 items and "
                    "500 texts, the pool the anchors are drawn from")
    # The chance level, measured: random spaces of the test split's shape, the retrieval metric's R@1.
    rng, base = np.random.default_rng(0), toy_result()
    text_item = np.repeat(np.arange(100), 5)
    test = PairedData(x=np.zeros((100, 8), np.float32), y=np.zeros((500, 8), np.float32), text_item=text_item)
    scores = [Retrieval().compute(AlignmentResult(test, rng.standard_normal((100, 8)).astype(np.float32),
                                                  rng.standard_normal((500, 8)).astype(np.float32),
                                                  base.anchors, base.aligner))["mean_R@1"] for _ in range(400)]
    assert np.mean(scores) == pytest.approx(0.01, abs=0.0015)
    # The sizes are what a run found, not a setting: records without them share the same board.
    old = [dataclasses.replace(r, config={k: v for k, v in r.config.items() if k != "split_sizes"}) for r in records]
    assert [b.setting_id for b in boards(old)] == [b.setting_id for b in boards(records)]
